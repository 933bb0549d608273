package eval

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRealTextRefusesMistakesWithTheirLine(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"maps: {}\ntrain:\n  - file: a.csv\n    head: intent\n    map: nope\n", "m.yaml:5: a.csv: no map \"nope\" under maps"},
		{"train:\n  - file: a.csv\n    head: mood\n    label_all: x\n", "m.yaml:2: a.csv: head \"mood\": want intent or emotion"},
		{"train:\n  - file: a.csv\n    head: intent\n", "m.yaml:2: a.csv: give map or label_all"},
		{"train:\n  - file: a.tsv\n    format: goemotions\n    head: emotion\n    label_all: x\n", "m.yaml:2: a.tsv: format goemotions needs labels_file"},
		{"checks:\n  - name: a\n    kind: guess\n    head: intent\n    sets: [{file: a.csv, label_all: x}]\n", "m.yaml:2: check a: kind \"guess\""},
		{"checks:\n  - name: a\n    kind: polarity\n    head: emotion\n    sets: [{file: a.csv, label_all: x}]\n", "a polarity check lists its negative labels"},
		{"checks:\n  - name: a\n    kind: handoff\n    head: emotion\n    sets: [{file: a.csv, label_all: x}]\n", "a handoff check says which labels are positive"},
		{"train:\n  - file: a.csv\n    head: intent\n    label_all: x\n    colour: red\n", "m.yaml:5: field colour not found"},
	} {
		if _, err := ParseRealText("m.yaml", []byte(c.yaml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.yaml, err, c.want)
		}
	}
}

// TestRealTextExamplesMapCapAndRead maps CSV, GoEmotions and CrossWOZ files: caps keep rows
// spread over the file, multi-label GoEmotions rows are not trained on, excluded CrossWOZ
// turns are left out.
func TestRealTextExamplesMapCapAndRead(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("text,label\n")
	for i := range 10 {
		b.WriteString("stolen card " + string(rune('a'+i)) + ",lost\n")
		b.WriteString("weather " + string(rune('a'+i)) + ",weather\n")
	}
	b.WriteString(",lost\n") // an empty row is passed over
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte(b.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "labels.txt"), []byte("anger\njoy\nneutral\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "g.tsv"), []byte("so mad\t0\tx1\nyay\t1\tx2\nmixed\t0,1\tx3\nok then\t2\tx4\n"), 0o644)
	f, _ := os.Create(filepath.Join(dir, "w.zip"))
	z := zip.NewWriter(f)
	w, _ := z.Create("val.json")
	w.Write([]byte(`{"1": {"messages": [{"role": "usr", "content": "你好，推荐个景点"}, {"role": "sys", "content": "故宫"}, {"role": "usr", "content": "门票多少钱？"}]}}`))
	z.Close()
	f.Close()
	rt, err := ParseRealText("m.yaml", []byte(`
train:
  - {file: a.csv, head: intent, map: {lost: card_lost}, each: 4, rest: none, rest_each: 2}
  - {file: g.tsv, format: goemotions, labels_file: labels.txt, head: emotion, map: {anger: angry, joy: happy}}
  - {file: w.zip, format: crosswoz, head: intent, label_all: none, exclude: [你好]}
`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := rt.TrainExamples(dir)
	if err != nil {
		t.Fatal(err)
	}
	var intents, emotions []string
	for _, e := range got["intent"] {
		intents = append(intents, e.Label+":"+e.Text)
	}
	for _, e := range got["emotion"] {
		emotions = append(emotions, e.Label+":"+e.Text)
	}
	want := "card_lost:stolen card c|card_lost:stolen card e|none:weather e|card_lost:stolen card h|card_lost:stolen card j|none:weather j|none:门票多少钱？"
	if g := strings.Join(intents, "|"); g != want {
		t.Errorf("intents\n got %s\nwant %s", g, want)
	}
	if g := strings.Join(emotions, "|"); g != "angry:so mad|happy:yay" {
		t.Errorf("emotions: %s", g)
	}
}
