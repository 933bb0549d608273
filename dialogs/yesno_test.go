package dialogs

import "testing"

func TestYesNoWords(t *testing.T) {
	for text, want := range map[string]int{
		"yes": 1, "Yes, please": 1, "ok.": 1, "好的": 1, "好的呀": 1, "可以吧": 1, "是的，提交吧": 1,
		"no": -1, "No thanks": -1, "不用了": -1, "不要了！": -1, "算了": -1, "算了吧": -1, "不，我再想想": -1,
		"maybe": 0, "好像不太对": 0, "nothing": 0, "okapi": 0,
	} {
		if got := yesNo("", text); got != want {
			t.Errorf("%q: %d, want %d", text, got, want)
		}
	}
	if yesNo("deny", "好的") != -1 || yesNo("affirm", "no") != 1 {
		t.Error("the intent must win over the words")
	}
}
