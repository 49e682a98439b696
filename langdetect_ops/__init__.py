"""langdetect-ops: data -> train -> register -> export -> serve, for a 20-language detector."""
