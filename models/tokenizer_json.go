package models

import (
	"encoding/json"
	"fmt"
)

// BertTokenizerJSON writes a Hugging Face tokenizer.json for a BERT WordPiece vocabulary:
// BertNormalizer (clean text, Chinese characters split, lowercase and accents stripped when
// lowercase is set), BertPreTokenizer, WordPiece with "##" continuations, and [CLS] $A [SEP].
// vocab must hold [PAD], [UNK], [CLS], [SEP] and [MASK]; a token's id is its index.
func BertTokenizerJSON(vocab []string, lowercase bool) ([]byte, error) {
	ids := make(map[string]int, len(vocab))
	for i, tok := range vocab {
		if _, dup := ids[tok]; dup {
			return nil, fmt.Errorf("tokenizer: %q appears twice in the vocabulary", tok)
		}
		ids[tok] = i
	}
	special := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	var added []map[string]any
	for _, s := range special {
		id, ok := ids[s]
		if !ok {
			return nil, fmt.Errorf("tokenizer: vocabulary lacks %s", s)
		}
		added = append(added, map[string]any{
			"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
			"normalized": false, "special": true,
		})
	}
	tokenRef := func(s string) map[string]any {
		return map[string]any{"id": s, "ids": []int{ids[s]}, "tokens": []string{s}}
	}
	doc := map[string]any{
		"version":      "1.0",
		"truncation":   nil,
		"padding":      nil,
		"added_tokens": added,
		"normalizer": map[string]any{
			"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
			"strip_accents": lowercase, "lowercase": lowercase,
		},
		"pre_tokenizer": map[string]any{"type": "BertPreTokenizer"},
		"post_processor": map[string]any{
			"type": "TemplateProcessing",
			"single": []any{
				map[string]any{"SpecialToken": map[string]any{"id": "[CLS]", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": "[SEP]", "type_id": 0}},
			},
			"pair": []any{
				map[string]any{"SpecialToken": map[string]any{"id": "[CLS]", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": "[SEP]", "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}},
				map[string]any{"SpecialToken": map[string]any{"id": "[SEP]", "type_id": 1}},
			},
			"special_tokens": map[string]any{"[CLS]": tokenRef("[CLS]"), "[SEP]": tokenRef("[SEP]")},
		},
		"decoder": map[string]any{"type": "WordPiece", "prefix": "##", "cleanup": true},
		"model": map[string]any{
			"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
			"max_input_chars_per_word": 100, "vocab": ids,
		},
	}
	return json.MarshalIndent(doc, "", " ")
}
