package config

import (
	"bytes"
	"encoding"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

const header = `# Berth configuration, as printed by "berth config".
#
# Every key is shown with its effective value. Drop-in files (*.toml in the
# config directory, applied in lexical order) override only the keys they
# set, and command-line flags override both.
`

// maxLineLen is where comments wrap and a list is broken onto one line per
// item, to keep long lists (capabilities) readable and easy to edit.
const maxLineLen = 80

// Write prints cfg as commented TOML that Load reads back unchanged, so
// `berth config > berth.toml` is a faithful starting point. Keys and comments
// come from the struct tags, so a new field appears without touching this.
func Write(w io.Writer, cfg *Config) error {
	// Build it whole first: an error must not leave half a file behind.
	var b bytes.Buffer
	b.WriteString(header)
	if err := writeTable(&b, nil, "", reflect.ValueOf(cfg).Elem()); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// writeTable writes the table at key: its plain values first, then its
// sub-tables, because TOML puts every key after a [header] in that table.
func writeTable(b *bytes.Buffer, key []string, comment string, v reflect.Value) error {
	var values, tables []tomlField
	for _, f := range tomlFields(v.Type()) {
		if t := v.Field(f.index).Type(); isTable(t) || t.Kind() == reflect.Map {
			tables = append(tables, f)
		} else {
			values = append(values, f)
		}
	}
	if len(key) > 0 {
		b.WriteString("\n")
		writeComment(b, comment)
		fmt.Fprintf(b, "[%s]\n", formatKey(key))
	}
	for i, f := range values {
		if i > 0 {
			b.WriteString("\n")
		}
		writeComment(b, f.comment)
		if err := writeValue(b, f.name, v.Field(f.index)); err != nil {
			return fmt.Errorf("%s: %w", formatKey(append(slices.Clip(key), f.name)), err)
		}
	}
	for _, f := range tables {
		sub := append(slices.Clip(key), f.name)
		var err error
		if fv := v.Field(f.index); fv.Kind() == reflect.Map {
			err = writeMap(b, sub, f.comment, fv)
		} else {
			err = writeTable(b, sub, f.comment, fv)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeMap writes a map of tables as one [key.name] table per entry, sorted
// so the output is stable, and a map of values as one table of keys.
func writeMap(b *bytes.Buffer, key []string, comment string, m reflect.Value) error {
	if m.Type().Key().Kind() != reflect.String {
		return fmt.Errorf("%s: unsupported map key type %s", formatKey(key), m.Type().Key())
	}
	names := make([]string, 0, m.Len())
	for it := m.MapRange(); it.Next(); {
		names = append(names, it.Key().String())
	}
	slices.Sort(names)
	if !isTable(m.Type().Elem()) {
		b.WriteString("\n")
		writeComment(b, comment)
		fmt.Fprintf(b, "[%s]\n", formatKey(key))
		for _, name := range names {
			if err := writeValue(b, name, m.MapIndex(reflect.ValueOf(name).Convert(m.Type().Key()))); err != nil {
				return fmt.Errorf("%s: %w", formatKey(append(slices.Clip(key), name)), err)
			}
		}
		return nil
	}
	if len(names) == 0 {
		b.WriteString("\n")
		writeComment(b, comment)
	}
	for i, name := range names {
		if i > 0 {
			comment = ""
		}
		entry := m.MapIndex(reflect.ValueOf(name).Convert(m.Type().Key()))
		if err := writeTable(b, append(slices.Clip(key), name), comment, entry); err != nil {
			return err
		}
	}
	return nil
}

func writeComment(b *bytes.Buffer, comment string) {
	if comment == "" {
		return
	}
	for para := range strings.SplitSeq(comment, "\n") {
		line := "#"
		for word := range strings.FieldsSeq(para) {
			if len(line) > 1 && len(line)+1+len(word) > maxLineLen {
				b.WriteString(line + "\n")
				line = "#"
			}
			line += " " + word
		}
		b.WriteString(line + "\n")
	}
}

func writeValue(b *bytes.Buffer, name string, v reflect.Value) error {
	s, err := formatValue(v)
	if err != nil {
		return err
	}
	line := formatKey([]string{name}) + " = " + s
	if v.Kind() == reflect.Slice && v.Len() > 1 && len(line) > maxLineLen {
		// Re-format one item per line; TOML allows the trailing comma.
		var items strings.Builder
		for i := range v.Len() {
			item, _ := formatValue(v.Index(i))
			items.WriteString("  " + item + ",\n")
		}
		line = formatKey([]string{name}) + " = [\n" + items.String() + "]"
	}
	b.WriteString(line + "\n")
	return nil
}

// formatValue renders a plain value as TOML.
func formatValue(v reflect.Value) (string, error) {
	if v.CanAddr() {
		v = v.Addr() // so a MarshalText on the pointer is found too
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		text, err := m.MarshalText()
		if err != nil {
			return "", err
		}
		return quote(string(text)), nil
	}
	v = reflect.Indirect(v)
	switch v.Kind() {
	case reflect.String:
		return quote(v.String()), nil
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.Uint() > math.MaxInt64 {
			return "", fmt.Errorf("%d does not fit a TOML integer", v.Uint())
		}
		return strconv.FormatUint(v.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return formatFloat(v.Float()), nil
	case reflect.Slice, reflect.Array:
		items := make([]string, v.Len())
		for i := range items {
			s, err := formatValue(v.Index(i))
			if err != nil {
				return "", err
			}
			items[i] = s
		}
		return "[" + strings.Join(items, ", ") + "]", nil
	}
	return "", fmt.Errorf("unsupported type %s", v.Type())
}

func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	// A TOML float needs a fraction or an exponent, or it reads as an integer.
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// formatKey writes a dotted key, quoting the parts that are not bare keys
// (a handler named "kata.qemu" must stay one part).
func formatKey(parts []string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		if p != "" && strings.TrimFunc(p, isBareKeyRune) == "" {
			out[i] = p
		} else {
			out[i] = quote(p)
		}
	}
	return strings.Join(out, ".")
}

func isBareKeyRune(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

// quote writes s as a TOML basic string. strconv.Quote does not fit: its \x
// and \a escapes are not TOML.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
