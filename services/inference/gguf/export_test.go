package gguf

// AppendKV exposes the metadata encoder to the external tests, which build
// deliberately malformed files the Writer refuses to produce.
func AppendKV(b []byte, kv KV) []byte {
	t, _, _, err := typeOf(kv.Value)
	if err != nil {
		panic(err)
	}
	b = appendValue(b, kv.Key)
	b = append(b, byte(t), byte(t>>8), byte(t>>16), byte(t>>24))
	return appendValue(b, kv.Value)
}
