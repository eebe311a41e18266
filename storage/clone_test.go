package storage

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// fill sets every field of v (a pointer) to a non-zero value, following
// slices (two elements) and pointers, so that a Clone that forgets a field
// added later shares it and poison below shows it.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(int64(1e9+*n), 0).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), n)
		}
	case reflect.String:
		v.SetString("s" + string(rune('a'+*n%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint8:
		v.SetUint(uint64(*n))
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

// poison changes, in place, everything v shares through slices and
// pointers (what a shallow copy would share with its original).
func poison(v reflect.Value, shared bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			poison(v.Elem(), true)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if shared {
				v.Set(reflect.ValueOf(time.Unix(1, 0).UTC()))
			}
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				poison(v.Field(i), shared)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			poison(v.Index(i), true)
		}
	case reflect.String:
		if shared {
			v.SetString("poisoned")
		}
	case reflect.Bool:
		if shared {
			v.SetBool(false)
		}
	case reflect.Int, reflect.Int64:
		if shared {
			v.SetInt(-1)
		}
	case reflect.Uint8:
		if shared {
			v.SetUint(0)
		}
	}
}

// TestCloneIsDeep fills every field of each record type, clones it,
// changes everything the clone could share, and checks the original did
// not move: the stores and the Redis store's decoded-record cache rely on
// Clone sharing nothing.
func TestCloneIsDeep(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ptr   any
		clone func(any) any
	}{
		{"Account", new(Account), func(v any) any { return v.(*Account).Clone() }},
		{"Order", new(Order), func(v any) any { return v.(*Order).Clone() }},
		{"Authorization", new(Authorization), func(v any) any { return v.(*Authorization).Clone() }},
		{"Certificate", new(Certificate), func(v any) any { return v.(*Certificate).Clone() }},
		{"Problem", new(Problem), func(v any) any { return v.(*Problem).Clone() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			fill(reflect.ValueOf(tc.ptr).Elem(), &n)
			before, err := json.Marshal(tc.ptr)
			if err != nil {
				t.Fatal(err)
			}
			c := tc.clone(tc.ptr)
			if got, _ := json.Marshal(c); string(got) != string(before) {
				t.Fatalf("clone differs from the original:\n%s\n%s", got, before)
			}
			poison(reflect.ValueOf(c).Elem(), false)
			if after, _ := json.Marshal(tc.ptr); string(after) != string(before) {
				t.Errorf("changing the clone changed the original:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	if (*Problem)(nil).Clone() != nil {
		t.Error("a nil Problem's clone is not nil")
	}
}
