package config

import "time"

// Duration is a time.Duration written in TOML as a string such as "1m30s".
type Duration struct{ time.Duration }

// UnmarshalText parses "1m30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as "1m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }
