package streaming

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certLoader serves a certificate read from a pair of PEM files, read again
// when either file's modification time changes (a rotation). A pair that
// fails to load keeps the previous certificate in use.
type certLoader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime [2]time.Time
}

func newCertLoader(certFile, keyFile string, log *slog.Logger) (*certLoader, error) {
	l := &certLoader{certFile: certFile, keyFile: keyFile, log: log}
	if err := l.reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// get is tls.Config.GetCertificate.
func (l *certLoader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed() {
		if err := l.reloadLocked(); err != nil {
			l.log.Warn("streaming TLS certificate changed but does not load; keeping the previous one", "error", err)
		} else {
			l.log.Info("streaming TLS certificate reloaded", "cert", l.certFile)
		}
	}
	return l.cert, nil
}

func (l *certLoader) reload() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reloadLocked()
}

func (l *certLoader) reloadLocked() error {
	mt, err := l.modTimes()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(l.certFile, l.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s and key %s: %w", l.certFile, l.keyFile, err)
	}
	l.cert, l.modTime = &cert, mt
	return nil
}

// changed tells whether either file's modification time differs from the
// loaded pair's.
func (l *certLoader) changed() bool {
	mt, err := l.modTimes()
	return err == nil && mt != l.modTime
}

func (l *certLoader) modTimes() ([2]time.Time, error) {
	var mt [2]time.Time
	for i, f := range []string{l.certFile, l.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return mt, fmt.Errorf("TLS file: %w", err)
		}
		mt[i] = fi.ModTime()
	}
	return mt, nil
}
