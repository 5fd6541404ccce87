package appconf

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Parse reads a settings struct of type T from the environment with
// caarlos0/env, over the settings of a .env file in the working directory
// (the environment wins, as in Laravel). Durations are Go durations ("5m",
// "300ms") or plain seconds ("300"), as Reverb's settings are. Its errors
// name the environment variable (REVERB_SERVER_PORT), not the Go field, so
// that a bad setting is easy to find.
func Parse[T any]() (T, error) {
	vars, err := Environment()
	if err != nil {
		var zero T
		return zero, err
	}
	return parseFrom[T](vars)
}

// parseFrom is Parse from the variables vars.
func parseFrom[T any](vars map[string]string) (T, error) {
	v, err := env.ParseAsWithOptions[T](env.Options{
		Environment: vars,
		FuncMap:     map[reflect.Type]env.ParserFunc{reflect.TypeFor[time.Duration](): parseDuration},
	})
	if err == nil {
		return v, nil
	}
	return v, renameFields(err, reflect.TypeFor[T]())
}

// Environment is the process environment over the settings of the .env
// file in the working directory, if there is one.
func Environment() (map[string]string, error) {
	vars, err := readDotenv()
	if err != nil {
		return nil, err
	}
	if vars == nil {
		vars = map[string]string{}
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return vars, nil
}

// ParseDuration reads a duration setting: a plain number is seconds
// ("300", "0.5"), anything else a Go duration ("5m", "250ms").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs > float64(1<<63-1)/float64(time.Second) || secs < -float64(1<<63-1)/float64(time.Second) {
			return 0, fmt.Errorf("%s seconds is out of range", s)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want seconds (300) or a duration (5m): %q", s)
	}
	return d, nil
}

func parseDuration(s string) (any, error) { return ParseDuration(s) }

func renameFields(err error, t reflect.Type) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := fieldByName(t, pe.Name); ok {
				if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" {
					msgs = append(msgs, fmt.Sprintf("%s: not a valid %s: %v", name, pe.Type, errors.Unwrap(pe.Err)))
					continue
				}
			}
		}
		msgs = append(msgs, e.Error())
	}
	return fmt.Errorf("invalid settings: %s: %w", strings.Join(msgs, "; "), err)
}

// fieldByName finds a field of t or of the structs t holds, as caarlos0/env
// reads nested settings structs.
func fieldByName(t reflect.Type, name string) (reflect.StructField, bool) {
	if f, ok := t.FieldByName(name); ok {
		return f, true
	}
	for i := range t.NumField() {
		if ft := t.Field(i).Type; ft.Kind() == reflect.Struct {
			if f, ok := fieldByName(ft, name); ok {
				return f, true
			}
		}
	}
	return reflect.StructField{}, false
}
