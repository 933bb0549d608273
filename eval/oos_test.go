package eval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOOSHandComputed(t *testing.T) {
	preds := []Prediction{
		{Gold: "a", Label: "a", Confidence: 0.9},
		{Gold: "a", Label: "a", Confidence: 0.6},
		{Gold: "b", Label: "b", Confidence: 0.4},
		{Gold: "b", Label: "a", Confidence: 0.8}, // wrong at any threshold
		{Gold: "oos", Label: "a", Confidence: 0.5},
		{Gold: "oos", Label: "b", Confidence: 0.3},
	}
	// At 0.55: in-scope right and kept: 0.9, 0.6 → 2/4; oos caught: 0.5, 0.3 → 2/2;
	// flagged: 0.4, 0.5, 0.3 → precision 2/3.
	o := ScoreOOS(preds, "oos", 0.55)
	if o.InScope != 4 || o.OutOfScope != 2 || o.InScopeAccuracy != 0.5 || o.Recall != 1 || o.Precision != 2.0/3 {
		t.Errorf("%+v", o)
	}
	// In-scope accuracy ≥ 0.75 needs 3 of 4 right: the third-highest right confidence, 0.4.
	if thr := PickThreshold(preds, "oos", 0.75); thr != 0.4 {
		t.Errorf("threshold %v, want 0.4", thr)
	}
	if o := ScoreOOS(preds, "oos", 0.4); o.InScopeAccuracy != 0.75 || o.Recall != 0.5 {
		t.Errorf("at 0.4: %+v", o)
	}
	if thr := PickThreshold(preds, "oos", 0.9); thr != 0 {
		t.Errorf("unreachable accuracy gave threshold %v, want 0", thr)
	}
}

func TestLoadClincAndFolders(t *testing.T) {
	dir := t.TempDir()
	json := `{"train": [["hi", "greet"], ["bye", "leave"]], "oos_train": [["what is love", "oos"]], "test": [["x"]]}`
	os.WriteFile(filepath.Join(dir, "data_full.json"), []byte(json), 0o644)
	ex, err := Load([]string{filepath.Join(dir, "data_full.json#train+oos_train")}, Source{}, "intent")
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 3 || ex[2].Label != "oos" || ex[2].File != filepath.Join(dir, "data_full.json#oos_train") || ex[2].Line != 1 {
		t.Errorf("%+v", ex)
	}
	for _, c := range []struct{ path, want string }{
		{"data_full.json", "name the splits to read after #"},
		{"data_full.json#val", `no split "val" (it has oos_train, test, train)`},
		{"data_full.json#test", "split test, row 1: want [text, label]"},
	} {
		_, err := Load([]string{filepath.Join(dir, c.path)}, Source{}, "intent")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.path, err, c.want)
		}
	}
	sub := filepath.Join(dir, "nlu")
	os.Mkdir(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "b.csv"), []byte("text,label\nhello,greet\n"), 0o644)
	os.WriteFile(filepath.Join(sub, "a.yaml"), []byte("intents:\n  refund:\n    en: [refund me]\n"), 0o644)
	os.WriteFile(filepath.Join(sub, "notes.txt"), []byte("ignored"), 0o644)
	ex, err = Load([]string{sub}, Source{}, "intent")
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 2 || ex[0].Label != "refund" || ex[1].Label != "greet" {
		t.Errorf("folder: %+v", ex)
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if _, err := Load([]string{empty}, Source{}, "intent"); err == nil || !strings.Contains(err.Error(), "no data files") {
		t.Errorf("empty folder: %v", err)
	}
}

func FuzzParseClinc(f *testing.F) {
	f.Add([]byte(`{"train": [["hi", "greet"]], "oos_train": [["x", "oos"]]}`), "train+oos_train")
	f.Add([]byte(`{"train": [["hi"]]}`), "train")
	f.Add([]byte(`[1, 2]`), "")
	f.Fuzz(func(t *testing.T, data []byte, splits string) {
		ex, err := ParseClinc("f.json", data, splits)
		if err == nil && len(ex) > 0 && (ex[0].Text == "" || ex[0].Label == "") {
			t.Errorf("accepted an empty text or label: %+v", ex[0])
		}
	})
}
