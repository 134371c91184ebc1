"""Typed, validated configuration: YAML recipes plus `key=value` overrides -> `Config`."""
