package main

import (
	"fmt"
	"go/types"
	"slices"
	"strings"
)

// features returns the exported API of pkg as Go's api/*.txt files write
// it, one line per feature, sorted:
//
//	pkg P, const Name Type            and  pkg P, const Name = value
//	pkg P, var Name Type
//	pkg P, func Name(Param, ...) Result
//	pkg P, type Name struct           and  pkg P, type Name struct, Field Type
//	pkg P, type Name interface { M }  and  pkg P, type Name interface, M(Param) Result
//	pkg P, type Name Underlying
//	pkg P, method (Name) M(Param) Result  or  method (*Name) M(...)
//
// Parameter names are left out (renaming one changes no caller), types of
// other packages are qualified by package name, byte and rune are written
// uint8 and int32, and the methods of a type include those promoted from its
// embedded fields, as cmd/api writes them. Unlike cmd/api it writes no
// "//deprecated" lines (it reads export data, which has no doc comments),
// and it writes an alias of another package by its name (see writeName).
func features(pkg *types.Package) []string {
	w := &walker{pkg: pkg}
	scope := pkg.Scope()
	for _, name := range scope.Names() { // sorted
		if obj := scope.Lookup(name); obj.Exported() {
			w.object(obj)
		}
	}
	slices.Sort(w.out)
	return slices.Compact(w.out)
}

type walker struct {
	pkg *types.Package
	out []string
}

func (w *walker) emit(format string, args ...any) {
	w.out = append(w.out, "pkg "+w.pkg.Path()+", "+fmt.Sprintf(format, args...))
}

func (w *walker) object(obj types.Object) {
	switch obj := obj.(type) {
	case *types.Const:
		w.emit("const %s %s", obj.Name(), w.typeString(obj.Type()))
		if short, exact := obj.Val().String(), obj.Val().ExactString(); short == exact {
			w.emit("const %s = %s", obj.Name(), short)
		} else {
			w.emit("const %s = %s  // %s", obj.Name(), short, exact)
		}
	case *types.Var:
		w.emit("var %s %s", obj.Name(), w.typeString(obj.Type()))
	case *types.Func:
		w.emit("func %s%s", obj.Name(), w.signature(obj.Signature()))
	case *types.TypeName:
		w.typeName(obj)
	default:
		panic(fmt.Sprintf("apicheck: unexpected object %v (%T)", obj, obj))
	}
}

func (w *walker) typeName(obj *types.TypeName) {
	name := obj.Name()
	if obj.IsAlias() {
		w.emit("type %s = %s", name, w.typeString(obj.Type()))
		return
	}
	named := obj.Type().(*types.Named)
	if tps := named.TypeParams(); tps.Len() > 0 {
		name += w.typeParams(tps, true)
	}
	switch u := named.Underlying().(type) {
	case *types.Struct:
		w.emit("type %s struct", name)
		for f := range u.Fields() {
			switch {
			case !f.Exported():
			case f.Embedded():
				w.emit("type %s struct, embedded %s", name, w.typeString(f.Type()))
			default:
				w.emit("type %s struct, %s %s", name, f.Name(), w.typeString(f.Type()))
			}
		}
	case *types.Interface:
		w.iface(name, u)
		return // an interface's methods are its lines above
	default:
		w.emit("type %s %s", name, w.typeString(u))
	}
	// Methods on T, then those only *T has.
	seen := map[string]bool{}
	for _, t := range []types.Type{named, types.NewPointer(named)} {
		ms := types.NewMethodSet(t)
		for i := range ms.Len() {
			m := ms.At(i)
			if !m.Obj().Exported() || seen[m.Obj().Name()] {
				continue
			}
			seen[m.Obj().Name()] = true
			sig := m.Type().(*types.Signature)
			recv := w.typeString(sig.Recv().Type())
			if rtps := sig.RecvTypeParams(); rtps.Len() > 0 {
				recv += w.typeParams(rtps, false)
			}
			w.emit("method (%s) %s%s", recv, m.Obj().Name(), w.signature(sig))
		}
	}
}

// iface writes an interface's methods (its whole method set, embedded
// interfaces' methods included) and, when all of them are exported, the list
// of their names; an interface with unexported methods can only be
// implemented in its own package, so it may gain methods, and its line says
// "unexported methods" instead.
func (w *walker) iface(name string, u *types.Interface) {
	var names []string
	complete := true
	ms := types.NewMethodSet(u)
	for i := range ms.Len() {
		m := ms.At(i).Obj().(*types.Func)
		if !m.Exported() {
			complete = false
			continue
		}
		names = append(names, m.Name())
		w.emit("type %s interface, %s%s", name, m.Name(), w.signature(m.Signature()))
	}
	switch {
	case !complete:
		w.emit("type %s interface, unexported methods", name)
	case len(names) == 0:
		w.emit("type %s interface {}", name)
	default:
		slices.Sort(names)
		w.emit("type %s interface { %s }", name, strings.Join(names, ", "))
	}
}

func (w *walker) typeString(t types.Type) string {
	var b strings.Builder
	w.writeType(&b, t)
	return b.String()
}

func (w *walker) signature(sig *types.Signature) string {
	var b strings.Builder
	if tps := sig.TypeParams(); tps.Len() > 0 {
		b.WriteString(w.typeParams(tps, true))
	}
	w.writeTuple(&b, sig.Params(), sig.Variadic())
	switch res := sig.Results(); res.Len() {
	case 0:
	case 1:
		b.WriteByte(' ')
		w.writeType(&b, res.At(0).Type())
	default:
		b.WriteByte(' ')
		w.writeTuple(&b, res, false)
	}
	return b.String()
}

// typeParams writes [$0 C0, $1 C1] (or [$0, $1] without constraints): type
// parameters by index, since renaming one changes no caller.
func (w *walker) typeParams(tps *types.TypeParamList, constraints bool) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range tps.Len() {
		if i > 0 {
			b.WriteString(", ")
		}
		tp := tps.At(i)
		w.writeType(&b, tp)
		if constraints {
			b.WriteByte(' ')
			w.writeType(&b, tp.Constraint())
		}
	}
	b.WriteByte(']')
	return b.String()
}

func (w *walker) writeTuple(b *strings.Builder, t *types.Tuple, variadic bool) {
	b.WriteByte('(')
	for i := range t.Len() {
		if i > 0 {
			b.WriteString(", ")
		}
		typ := t.At(i).Type()
		if variadic && i == t.Len()-1 {
			b.WriteString("...")
			typ = typ.(*types.Slice).Elem()
		}
		w.writeType(b, typ)
	}
	b.WriteByte(')')
}

func (w *walker) writeType(b *strings.Builder, t types.Type) {
	switch t := t.(type) {
	case *types.Basic:
		b.WriteString(basicName(t))
	case *types.Pointer:
		b.WriteByte('*')
		w.writeType(b, t.Elem())
	case *types.Slice:
		b.WriteString("[]")
		w.writeType(b, t.Elem())
	case *types.Array:
		fmt.Fprintf(b, "[%d]", t.Len())
		w.writeType(b, t.Elem())
	case *types.Map:
		b.WriteString("map[")
		w.writeType(b, t.Key())
		b.WriteByte(']')
		w.writeType(b, t.Elem())
	case *types.Chan:
		b.WriteString(map[types.ChanDir]string{types.SendRecv: "chan ", types.SendOnly: "chan<- ", types.RecvOnly: "<-chan "}[t.Dir()])
		w.writeType(b, t.Elem())
	case *types.Signature:
		b.WriteString("func")
		b.WriteString(w.signature(t))
	case *types.Struct:
		b.WriteString("struct") // as cmd/api: fields of unnamed structs are not listed
	case *types.Interface:
		var parts []string
		for m := range t.ExplicitMethods() {
			parts = append(parts, m.Name())
		}
		slices.Sort(parts)
		var embedded []string
		for e := range t.EmbeddedTypes() {
			embedded = append(embedded, w.typeString(e))
		}
		slices.Sort(embedded)
		parts = append(parts, embedded...)
		if len(parts) == 0 {
			b.WriteString("interface{}")
		} else {
			b.WriteString("interface{ " + strings.Join(parts, ", ") + " }")
		}
	case *types.Union:
		for i := range t.Len() {
			if i > 0 {
				b.WriteString(" | ")
			}
			if t.Term(i).Tilde() {
				b.WriteByte('~')
			}
			w.writeType(b, t.Term(i).Type())
		}
	case *types.Alias:
		if t.Obj().Pkg() == nil { // any
			w.writeType(b, types.Unalias(t))
			return
		}
		w.writeName(b, t.Obj(), t.TypeArgs())
	case *types.Named:
		w.writeName(b, t.Obj(), t.TypeArgs())
	case *types.TypeParam:
		fmt.Fprintf(b, "$%d", t.Index())
	default:
		panic(fmt.Sprintf("apicheck: unexpected type %v (%T)", t, t))
	}
}

// writeName writes a named type or an alias by its name, qualified by its
// package's name when it is another package's. An alias is written by its
// own name, as callers write it (ipv4.Message, not x/net's internal
// socket.Message), where cmd/api writes what it stands for.
func (w *walker) writeName(b *strings.Builder, obj *types.TypeName, args *types.TypeList) {
	if p := obj.Pkg(); p != nil && p != w.pkg {
		b.WriteString(p.Name() + ".")
	}
	b.WriteString(obj.Name())
	if args.Len() > 0 {
		b.WriteByte('[')
		for i := range args.Len() {
			if i > 0 {
				b.WriteString(", ")
			}
			w.writeType(b, args.At(i))
		}
		b.WriteByte(']')
	}
}

func basicName(t *types.Basic) string {
	switch t.Kind() {
	case types.Uint8:
		return "uint8" // byte
	case types.Int32:
		return "int32" // rune
	case types.UnsafePointer:
		return "unsafe.Pointer"
	case types.UntypedBool:
		return "ideal-bool"
	case types.UntypedInt:
		return "ideal-int"
	case types.UntypedRune:
		return "ideal-char"
	case types.UntypedFloat:
		return "ideal-float"
	case types.UntypedComplex:
		return "ideal-complex"
	case types.UntypedString:
		return "ideal-string"
	}
	return t.Name()
}
