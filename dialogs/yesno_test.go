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

func TestCancelWords(t *testing.T) {
	for text, want := range map[string]bool{
		"cancel": true, "Never mind, forget it": true, "never mind": true, "forget it.": true, "stop": true, "No thanks!": true,
		"I changed my mind": true, "算了": true, "算了吧": true, "不要了！": true, "取消": true, "不用了": true, "不用了，谢谢": true,
		"KF20261122": false, "the screen is cracked": false, "stopwatch broken": false, "取消订单的原因是太贵": false, "yes": false, "好的": false,
	} {
		if got := Cancels(text); got != want {
			t.Errorf("%q: %v, want %v", text, got, want)
		}
	}
}
