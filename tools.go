//go:build tools

// This file pins the gqlgen code generator's version in go.mod; it is never
// built.
package main

import _ "github.com/99designs/gqlgen"
