// Command webserver stands in for the web servers of the images critest
// runs (e2e-test-images/nginx, e2e-test-images/httpd and cri-tools'
// hostnet-nginx) in as much as critest looks at them:
//
//   - it serves the files under its document root over HTTP (GET / answers
//     200 with index.html) on the port the real server's configuration file
//     names, so port mapping and port forwarding have something to reach;
//   - it writes its pid where the real server does (/var/run/nginx.pid),
//     which the HostPID spec reads;
//   - its process looks like the real one: the command name (comm) is the
//     executable's, "nginx", which `pidof nginx` finds, and the command line
//     is the real master's, "nginx: master process nginx -g daemon off;",
//     which the ContainerPID spec looks for in /proc/1/cmdline;
//   - httpd says "httpd" in its log at start-up, as Apache does (the
//     multi-container log spec waits for that word);
//   - SIGTERM, SIGINT and SIGQUIT make it exit 0, and so does SIGWINCH for
//     httpd (the official image's STOPSIGNAL).
//
// What it impersonates follows from the name it is installed under
// (/usr/sbin/nginx, /usr/local/bin/httpd-foreground). The rig builds it with
// CGO_ENABLED=0 into each web server image; it is also compiled here as an
// ordinary package so that `go vet ./...` checks it.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// persona is one web server this program can pass for.
type persona struct {
	// title is the command line the real server shows in ps.
	title string
	// config is the real server's configuration file; portRE finds the
	// listening port in it, and defaultPort applies without one.
	config      string
	portRE      *regexp.Regexp
	defaultPort int
	root        string // document root
	pidFile     string
	banner      string // written to stderr at start-up
	// stop are the signals that end it (exit 0).
	stop []os.Signal
}

var personas = map[string]persona{
	"nginx": {
		title:       "nginx: master process nginx -g daemon off;",
		config:      "/etc/nginx/conf.d/default.conf",
		portRE:      regexp.MustCompile(`(?m)^\s*listen\s+(\d+)\s*;`),
		defaultPort: 80,
		root:        "/usr/share/nginx/html",
		pidFile:     "/var/run/nginx.pid",
		stop:        []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT},
	},
	"httpd-foreground": {
		title:       "httpd -DFOREGROUND",
		config:      "/usr/local/apache2/conf/httpd.conf",
		portRE:      regexp.MustCompile(`(?m)^\s*Listen\s+(\d+)\s*$`),
		defaultPort: 80,
		root:        "/usr/local/apache2/htdocs",
		pidFile:     "/usr/local/apache2/logs/httpd.pid",
		banner: "AH00558: httpd: Could not reliably determine the server's fully qualified domain name, " +
			"using %s. Set the 'ServerName' directive globally to suppress this message",
		// SIGWINCH is Apache's graceful stop, the image's STOPSIGNAL.
		stop: []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGWINCH},
	},
}

func main() {
	exe, err := os.Executable()
	if err != nil {
		fatalf("find own executable: %v", err)
	}
	p, ok := personas[filepath.Base(exe)]
	if !ok {
		fatalf("installed as %s: want one of nginx, httpd-foreground", exe)
	}
	// Re-exec under the real server's command line. exec keeps the pid and
	// takes the command name from the file, so comm stays "nginx".
	if os.Args[0] != p.title {
		err := syscall.Exec(exe, []string{p.title}, os.Environ())
		fatalf("re-exec %s: %v", exe, err)
	}

	port := p.port()
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		fatalf("listen: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(p.pidFile), 0o755); err != nil {
		fatalf("create pid dir: %v", err)
	}
	if err := os.WriteFile(p.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		fatalf("write pid file: %v", err)
	}
	if p.banner != "" {
		fmt.Fprintf(os.Stderr, p.banner+"\n", hostIP())
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, p.stop...)
	go func() {
		<-sigs
		os.Remove(p.pidFile)
		os.Exit(0)
	}()

	srv := &http.Server{Handler: accessLog(http.FileServer(http.Dir(p.root))), ReadHeaderTimeout: 10 * time.Second}
	fatalf("serve: %v", srv.Serve(l))
}

// port reads the listening port from the configuration file, if any.
func (p persona) port() int {
	data, err := os.ReadFile(p.config)
	if err != nil {
		return p.defaultPort
	}
	if m := p.portRE.FindSubmatch(data); m != nil {
		if n, err := strconv.Atoi(string(m[1])); err == nil {
			return n
		}
	}
	return p.defaultPort
}

// accessLog writes one line per request to stdout, in the combined log
// format's spirit.
func accessLog(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		fmt.Fprintf(os.Stdout, "%s - - [%s] %q %d \"%s\"\n", r.RemoteAddr, time.Now().Format("02/Jan/2006:15:04:05 -0700"),
			r.Method+" "+r.URL.RequestURI()+" "+r.Proto, rec.status, r.UserAgent())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// hostIP is the first non-loopback address, for the httpd banner.
func hostIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "webserver: "+format+"\n", args...)
	os.Exit(1)
}
