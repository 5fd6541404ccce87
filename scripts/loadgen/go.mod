module github.com/herald-ws/herald/scripts/loadgen

go 1.26.0

require (
	github.com/gorilla/websocket v1.5.3
	github.com/herald-ws/herald/shared v0.0.0
)

replace github.com/herald-ws/herald/shared => ../../shared
