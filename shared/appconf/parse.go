package appconf

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Parse reads a settings struct of type T from the environment with
// caarlos0/env. Its errors name the environment variable (REVERB_SERVER_PORT),
// not the Go field, so that a bad setting is easy to find.
func Parse[T any]() (T, error) {
	v, err := env.ParseAs[T]()
	if err == nil {
		return v, nil
	}
	return v, renameFields(err, reflect.TypeFor[T]())
}

func renameFields(err error, t reflect.Type) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
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
