package eval

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// Source says how to read data files.
type Source struct {
	// Format is "auto" (default: by extension: .yaml/.yml kefu, .csv csv, .tsv csv with tabs,
	// .json clinc150), "kefu", "csv" or "clinc150" (data_full.json#split+split, or its CSVs).
	Format string
	// TextCol and LabelCol name the CSV columns; defaults "text" and "label".
	TextCol, LabelCol string
	// Delimiter separates CSV fields; default ','.
	Delimiter rune
	// SkipBad passes over CSV rows without text or label, with too few fields or not UTF-8,
	// instead of refusing the file (public sets have a few).
	SkipBad bool
}

// Load reads every file and keeps the examples of head ("intent" or "emotion"; CSV rows
// count for any head).
func Load(paths []string, src Source, head string) ([]Example, error) {
	var out []Example
	files, err := expand(paths)
	if err != nil {
		return nil, err
	}
	for _, p := range files {
		ex, err := loadFile(p, src)
		if err != nil {
			return nil, err
		}
		for _, e := range ex {
			if e.Head == "" || e.Head == head {
				e.Head = head
				out = append(out, e)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s examples in %s", head, strings.Join(paths, ", "))
	}
	return out, nil
}

// expand replaces each folder in paths by its data files (.yaml, .yml, .csv, .tsv, .json),
// sorted by name.
func expand(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		file, _, _ := strings.Cut(p, "#") // a JSON file's splits: data_full.json#test+oos_test
		st, err := os.Stat(file)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		n := len(out)
		for _, e := range entries {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".csv", ".tsv", ".json":
				if !e.IsDir() {
					out = append(out, filepath.Join(p, e.Name()))
				}
			}
		}
		if len(out) == n {
			return nil, &DataError{File: p, Msg: "folder holds no data files (.yaml, .yml, .csv, .tsv, .json)"}
		}
	}
	return out, nil
}

func loadFile(path string, src Source) ([]Example, error) {
	path, splits, _ := strings.Cut(path, "#")
	format := src.Format
	if format == "" || format == "auto" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".json":
			format = "clinc150"
		case ".yaml", ".yml":
			format = "kefu"
		case ".csv":
			format = "csv"
		case ".tsv":
			format = "csv"
			if src.Delimiter == 0 {
				src.Delimiter = '\t'
			}
		default:
			return nil, &DataError{File: path, Msg: "unknown format; pass --format kefu, csv or clinc150"}
		}
	}
	switch format {
	case "kefu":
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return ParseNLU(path, data)
	case "clinc150":
		if strings.ToLower(filepath.Ext(path)) == ".json" {
			return readClinc(path, splits)
		}
		fallthrough
	case "csv":
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return ReadCSV(path, f, src)
	}
	return nil, fmt.Errorf("unknown format %q (want auto, kefu, csv or clinc150)", format)
}

// ReadCSV reads a CSV with a header row. Rows without text or label, and text that is not
// UTF-8, are refused with the file and line.
func ReadCSV(name string, r io.Reader, src Source) ([]Example, error) {
	textCol, labelCol := cmp.Or(src.TextCol, "text"), cmp.Or(src.LabelCol, "label")
	cr := csv.NewReader(r)
	cr.Comma = cmp.Or(src.Delimiter, ',')
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &DataError{File: name, Msg: "empty file"}
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	ti, li := slices.Index(header, textCol), slices.Index(header, labelCol)
	if ti < 0 || li < 0 {
		return nil, &DataError{File: name, Line: 1, Msg: fmt.Sprintf("header %q lacks column %q or %q (set --text-col and --label-col)", header, textCol, labelCol)}
	}
	var out []Example
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) <= max(ti, li) {
			if src.SkipBad {
				continue
			}
			return nil, &DataError{File: name, Line: line, Msg: fmt.Sprintf("%d fields, the header has %d", len(rec), len(header))}
		}
		text, label := rec[ti], strings.TrimSpace(rec[li])
		switch {
		case src.SkipBad && (!utf8.ValidString(text) || !utf8.ValidString(label) || strings.TrimSpace(text) == "" || label == ""):
			continue
		case !utf8.ValidString(text) || !utf8.ValidString(label):
			return nil, &DataError{File: name, Line: line, Msg: "not UTF-8 text"}
		case strings.TrimSpace(text) == "":
			return nil, &DataError{File: name, Line: line, Msg: "row without text"}
		case label == "":
			return nil, &DataError{File: name, Line: line, Msg: "row without label"}
		}
		out = append(out, Example{Text: text, Label: label, File: name, Line: line})
	}
	if len(out) == 0 && !src.SkipBad {
		return nil, &DataError{File: name, Msg: "no rows after the header"}
	}
	return out, nil
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &DataError{File: name, Line: pe.Line, Msg: pe.Err.Error()}
	}
	return &DataError{File: name, Msg: err.Error()}
}

// readClinc reads CLINC150's data_full.json: an object of splits ("train", "val", "test",
// "oos_train", …), each a list of [text, label] pairs (label "oos" for out-of-scope queries).
// splits names the ones to read, joined by "+".
func readClinc(path, splits string) ([]Example, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseClinc(path, data, splits)
}

// ParseClinc reads CLINC150's JSON from data; path names it in errors and examples.
func ParseClinc(path string, data []byte, splits string) ([]Example, error) {
	var doc map[string][][]string
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, &DataError{File: path, Msg: "not CLINC150 JSON (an object of splits, each a list of [text, label]): " + err.Error()}
	}
	names := slices.Sorted(maps.Keys(doc))
	if splits == "" {
		return nil, &DataError{File: path, Msg: fmt.Sprintf("name the splits to read after #, e.g. %s#train or %s#test+oos_test (it has %s)", path, path, strings.Join(names, ", "))}
	}
	var out []Example
	for _, split := range strings.Split(splits, "+") {
		rows, ok := doc[split]
		if !ok {
			return nil, &DataError{File: path, Msg: fmt.Sprintf("no split %q (it has %s)", split, strings.Join(names, ", "))}
		}
		for i, r := range rows {
			if len(r) != 2 || strings.TrimSpace(r[0]) == "" || strings.TrimSpace(r[1]) == "" || !utf8.ValidString(r[0]+r[1]) {
				return nil, &DataError{File: path, Msg: fmt.Sprintf("split %s, row %d: want [text, label], got %q", split, i+1, r)}
			}
			out = append(out, Example{Text: r[0], Label: strings.TrimSpace(r[1]), File: path + "#" + split, Line: i + 1})
		}
	}
	return out, nil
}
