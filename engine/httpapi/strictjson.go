package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// duplicateKey finds a key that appears twice in one JSON object, exactly or in another
// case. encoding/json keeps the last of duplicates and matches field names without regard
// to case, so {"text":"hello","Text":"…"} would quietly read the second; kefu refuses it.
func duplicateKey(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		seen   map[string]string // folded key → as written
		key    bool              // the next token in an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nil // the decoder proper reports syntax errors with their position
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if k, ok := tok.(string); ok {
				folded := strings.ToLower(k)
				if prev, dup := top.seen[folded]; dup {
					if prev == k {
						return fmt.Errorf("field %q appears twice", k)
					}
					return fmt.Errorf("field %q appears twice (also as %q)", k, prev)
				}
				top.seen[folded] = k
				top.key = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.object {
				top.key = true
			}
			stack = append(stack, &frame{object: true, seen: map[string]string{}, key: true})
			continue
		case json.Delim('['):
			if top != nil && top.object {
				top.key = true
			}
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].key = true
			}
			continue
		}
		if top != nil && top.object { // a value: the next token is a key
			top.key = true
		}
	}
}
