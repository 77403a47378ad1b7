package fakeapi_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
)

// The fake is an http.Handler: mount it on any server and talk to it with
// the sandbox key.
func Example() {
	fake := fakeapi.New(fakeapi.Options{}) // empty catalogue, default keys
	srv := httptest.NewServer(fake)
	defer srv.Close()
	defer fake.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/v1/me/credits", nil)
	req.Header.Set("Authorization", "Bearer "+fakeapi.SandboxKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.StatusCode, strings.TrimSpace(string(body)))

	res, err = http.Get(srv.URL + "/v1/me") // no key
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	body, _ = io.ReadAll(res.Body)
	fmt.Println(res.StatusCode, strings.TrimSpace(string(body)))
	http.DefaultClient.CloseIdleConnections()

	// Output:
	// 200 {"status":"SUCCESS","data":{"credits":100000}}
	// 401 {"status":"UNAUTHORIZED_ERROR","message":"Missing or invalid API key","data":null}
}
