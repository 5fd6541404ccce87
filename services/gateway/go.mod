module github.com/herald-ws/herald/services/gateway

go 1.26

require github.com/herald-ws/herald/shared v0.0.0

replace github.com/herald-ws/herald/shared => ../../shared
