package memory

// The store hands out and keeps private deep copies (see storage/clone.go,
// whose Clone methods it uses for records); these copy the rest.

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string{}, s...)
}
