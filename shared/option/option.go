// Package option holds the one rule for defaulting the numeric fields of an
// options struct: zero or negative means unset.
package option

// Number is what an options field with a default can hold.
type Number interface {
	~int | ~int32 | ~int64 | ~uint32 | ~uint64 | ~float64
}

// Default sets *v to d when *v is zero or negative (the field was not set).
func Default[T Number](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}
