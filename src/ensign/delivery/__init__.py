"""The background dispatcher that delivers recorded evaluations to analytics vendors."""
