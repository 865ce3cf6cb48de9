// todo.go: the error of the ops still stubbed out (stubs_misc.go). Delete it
// with the last stub.
package kernels

import "errors"

var errTodo = errors.New("kernels: op not implemented on the GPU yet")
