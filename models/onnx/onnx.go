// Package onnx writes ONNX models from Go: a graph builder over the protobuf wire format
// (no generated code), enough for kefu's own models, test fixtures and benchmark models.
//
// Field numbers follow onnx/onnx.proto (IR version 8). Only what kefu writes is covered:
// tensors of float32 and int64, nodes with int, float, ints and tensor attributes, and
// value infos with static or symbolic dimensions.
package onnx

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// DataType is an ONNX TensorProto element type.
type DataType int32

// Element types kefu writes.
const (
	Float   DataType = 1
	Bool    DataType = 9
	Float16 DataType = 10
	Int32   DataType = 6
	Int64   DataType = 7
)

// IRVersion and Opset are what Marshal writes: ONNX 1.13 (IR 8, opset 17) is loaded by
// every ONNX Runtime kefu supports, and opset 17 has LayerNormalization.
const (
	IRVersion = 8
	Opset     = 17
)

// Tensor is a constant: an initializer or a tensor attribute.
type Tensor struct {
	Name   string
	Dims   []int64
	Type   DataType
	Floats []float32 // when Type is Float or Float16 (rounded to half precision when written)
	Ints   []int64   // when Type is Int64 or Int32
}

// Dim is one dimension of a graph input or output: a size, or a symbolic name when Param is set.
type Dim struct {
	Size  int64
	Param string
}

// ValueInfo names a graph input or output with its element type and shape.
type ValueInfo struct {
	Name  string
	Type  DataType
	Shape []Dim
}

// Attr is a node attribute. Exactly one of the value fields is used, chosen by Kind.
type Attr struct {
	Name   string
	Kind   AttrKind
	Int    int64
	Float  float32
	Ints   []int64
	Tensor *Tensor
}

// AttrKind is an ONNX AttributeProto type.
type AttrKind int32

// Attribute kinds kefu writes.
const (
	AttrFloat  AttrKind = 1
	AttrInt    AttrKind = 2
	AttrTensor AttrKind = 4
	AttrInts   AttrKind = 7
)

// Node is one operator application.
type Node struct {
	Op      string
	Name    string
	Inputs  []string
	Outputs []string
	Attrs   []Attr
}

// Graph is an ONNX graph under construction. Its helper methods append nodes and return the
// names of their outputs, so a model reads as a sequence of operations.
type Graph struct {
	Name         string
	Nodes        []Node
	Initializers []Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
	n            int
}

// Model is a graph plus the metadata ONNX Runtime reads.
type Model struct {
	Graph    *Graph
	Producer string
	Version  int64
	Metadata map[string]string
}

// NewGraph starts an empty graph.
func NewGraph(name string) *Graph { return &Graph{Name: name} }

// Input declares a graph input and returns its name.
func (g *Graph) Input(name string, t DataType, shape ...Dim) string {
	g.Inputs = append(g.Inputs, ValueInfo{Name: name, Type: t, Shape: shape})
	return name
}

// Output declares name as a graph output.
func (g *Graph) Output(name string, t DataType, shape ...Dim) {
	g.Outputs = append(g.Outputs, ValueInfo{Name: name, Type: t, Shape: shape})
}

// Floats adds a float32 initializer and returns its name.
func (g *Graph) Floats(name string, dims []int64, data []float32) string {
	g.Initializers = append(g.Initializers, Tensor{Name: name, Dims: dims, Type: Float, Floats: data})
	return name
}

// Ints adds an int64 initializer and returns its name.
func (g *Graph) Ints(name string, dims []int64, data []int64) string {
	g.Initializers = append(g.Initializers, Tensor{Name: name, Dims: dims, Type: Int64, Ints: data})
	return name
}

// Halves adds a float16 initializer holding data rounded to half precision.
func (g *Graph) Halves(name string, dims []int64, data []float32) string {
	g.Initializers = append(g.Initializers, Tensor{Name: name, Dims: dims, Type: Float16, Floats: data})
	return name
}

// Int32s adds an int32 initializer and returns its name.
func (g *Graph) Int32s(name string, dims []int64, data []int64) string {
	g.Initializers = append(g.Initializers, Tensor{Name: name, Dims: dims, Type: Int32, Ints: data})
	return name
}

// Half rounds f to the nearest IEEE 754 half-precision value (ties to even) and returns its
// bits; values beyond the half range become infinities, tiny ones subnormals or zero.
func Half(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff == 0:
		return sign
	case b>>23&0xff == 0xff && mant != 0: // NaN
		return sign | 0x7e00
	case exp >= 0x1f: // infinity, or too large
		return sign | 0x7c00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		half := mant >> shift
		rem := mant & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, up to infinity: still correct
	}
	return sign | uint16(half)
}

// Scalar adds a float32 scalar initializer and returns its name.
func (g *Graph) Scalar(name string, v float32) string {
	return g.Floats(name, nil, []float32{v})
}

// Op appends a node with one output and returns the output's name.
func (g *Graph) Op(op string, inputs []string, attrs ...Attr) string {
	g.n++
	out := fmt.Sprintf("%s_%d", op, g.n)
	g.Nodes = append(g.Nodes, Node{Op: op, Name: out, Inputs: inputs, Outputs: []string{out}, Attrs: attrs})
	return out
}

// Rename gives the output of the last node the name want (used for graph outputs).
func (g *Graph) Rename(have, want string) string {
	for i := range g.Nodes {
		for j, o := range g.Nodes[i].Outputs {
			if o == have {
				g.Nodes[i].Outputs[j] = want
			}
		}
		for j, in := range g.Nodes[i].Inputs {
			if in == have {
				g.Nodes[i].Inputs[j] = want
			}
		}
	}
	return want
}

// IntAttr, FloatAttr and IntsAttr build attributes.
func IntAttr(name string, v int64) Attr      { return Attr{Name: name, Kind: AttrInt, Int: v} }
func FloatAttr(name string, v float32) Attr  { return Attr{Name: name, Kind: AttrFloat, Float: v} }
func IntsAttr(name string, v ...int64) Attr  { return Attr{Name: name, Kind: AttrInts, Ints: v} }
func TensorAttr(name string, t *Tensor) Attr { return Attr{Name: name, Kind: AttrTensor, Tensor: t} }
func Sym(name string) Dim                    { return Dim{Param: name} }
func Fixed(size int64) Dim                   { return Dim{Size: size} }

// Marshal encodes the model as an ONNX ModelProto.
func (m *Model) Marshal() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType) // ir_version
	b = protowire.AppendVarint(b, IRVersion)
	if m.Producer != "" {
		b = appendString(b, 2, m.Producer)
	}
	if m.Version != 0 {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.Version))
	}
	b = appendMessage(b, 7, m.Graph.marshal())
	var opset []byte
	opset = appendString(opset, 1, "")
	opset = protowire.AppendTag(opset, 2, protowire.VarintType)
	opset = protowire.AppendVarint(opset, Opset)
	b = appendMessage(b, 8, opset)
	for _, k := range slices.Sorted(maps.Keys(m.Metadata)) {
		var e []byte
		e = appendString(e, 1, k)
		e = appendString(e, 2, m.Metadata[k])
		b = appendMessage(b, 14, e)
	}
	return b
}

func (g *Graph) marshal() []byte {
	var b []byte
	for i := range g.Nodes {
		b = appendMessage(b, 1, g.Nodes[i].marshal())
	}
	b = appendString(b, 2, g.Name)
	for i := range g.Initializers {
		b = appendMessage(b, 5, g.Initializers[i].marshal())
	}
	for _, v := range g.Inputs {
		b = appendMessage(b, 11, v.marshal())
	}
	for _, v := range g.Outputs {
		b = appendMessage(b, 12, v.marshal())
	}
	return b
}

func (n *Node) marshal() []byte {
	var b []byte
	for _, in := range n.Inputs {
		b = appendString(b, 1, in)
	}
	for _, out := range n.Outputs {
		b = appendString(b, 2, out)
	}
	b = appendString(b, 3, n.Name)
	b = appendString(b, 4, n.Op)
	for _, a := range n.Attrs {
		b = appendMessage(b, 5, a.marshal())
	}
	return b
}

func (a *Attr) marshal() []byte {
	var b []byte
	b = appendString(b, 1, a.Name)
	switch a.Kind {
	case AttrFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.Float))
	case AttrInt:
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.Int))
	case AttrTensor:
		b = appendMessage(b, 5, a.Tensor.marshal())
	case AttrInts:
		var p []byte
		for _, v := range a.Ints {
			p = protowire.AppendVarint(p, uint64(v))
		}
		b = appendMessage(b, 8, p)
	}
	b = protowire.AppendTag(b, 20, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(a.Kind))
	return b
}

func (t *Tensor) marshal() []byte {
	var b []byte
	if len(t.Dims) > 0 {
		var p []byte
		for _, d := range t.Dims {
			p = protowire.AppendVarint(p, uint64(d))
		}
		b = appendMessage(b, 1, p)
	}
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.Type))
	b = appendString(b, 8, t.Name)
	var raw []byte
	switch t.Type {
	case Float:
		raw = make([]byte, 4*len(t.Floats))
		for i, f := range t.Floats {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
		}
	case Float16:
		raw = make([]byte, 2*len(t.Floats))
		for i, f := range t.Floats {
			binary.LittleEndian.PutUint16(raw[2*i:], Half(f))
		}
	case Int32:
		raw = make([]byte, 4*len(t.Ints))
		for i, v := range t.Ints {
			binary.LittleEndian.PutUint32(raw[4*i:], uint32(int32(v)))
		}
	case Int64:
		raw = make([]byte, 8*len(t.Ints))
		for i, v := range t.Ints {
			binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
		}
	}
	return appendMessage(b, 9, raw) // raw_data
}

func (v *ValueInfo) marshal() []byte {
	var shape []byte
	for _, d := range v.Shape {
		var dim []byte
		if d.Param != "" {
			dim = appendString(dim, 2, d.Param)
		} else {
			dim = protowire.AppendTag(dim, 1, protowire.VarintType)
			dim = protowire.AppendVarint(dim, uint64(d.Size))
		}
		shape = appendMessage(shape, 1, dim)
	}
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, uint64(v.Type))
	tensor = appendMessage(tensor, 2, shape)
	var typ []byte
	typ = appendMessage(typ, 1, tensor)
	var b []byte
	b = appendString(b, 1, v.Name)
	return appendMessage(b, 2, typ)
}

func appendString(b []byte, field protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessage(b []byte, field protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}
