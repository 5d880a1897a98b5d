package testimage

import "runtime"

var goarch = runtime.GOARCH
