// Command webserver stands in for the nginx and httpd images that critest
// runs: installed as /usr/sbin/nginx it serves /usr/share/nginx/html on
// $WEB_PORT (default 80), writes its pid to /var/run/nginx.pid like
// nginx, and logs a line with "httpd" in it to stdout. Started as
// `nginx -g "daemon off;" master process` its /proc/<pid>/cmdline carries
// "master process" as nginx's master does.
package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	port := os.Getenv("WEB_PORT")
	if port == "" {
		port = "80"
	}
	if err := os.MkdirAll("/var/run", 0o755); err == nil {
		os.WriteFile("/var/run/nginx.pid", []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644)
	}
	fmt.Printf("httpd (shimless stand-in for nginx/httpd) listening on :%s\n", port)
	err := http.ListenAndServe(":"+port, http.FileServer(http.Dir("/usr/share/nginx/html")))
	fmt.Fprintln(os.Stderr, "webserver:", err)
	os.Exit(1)
}
