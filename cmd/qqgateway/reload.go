package main

import (
	"syscall"

	"github.com/sirupsen/logrus"
)

// routeSignals reloads on SIGHUP, at any time, and hands every other
// signal to stopSignals, until stopRouting is closed.
func (d *daemon) routeSignals() {
	for {
		select {
		case sig := <-d.cmd.signals:
			if sig == syscall.SIGHUP {
				d.reload()
				continue
			}
			select {
			case d.stopSignals <- sig:
			default: // two are waiting already: one more changes nothing
			}
		case <-d.stopRouting:
			return
		}
	}
}

// reload re-reads the configuration file and applies its [log] level and
// [gateway] admins; a file with any error changes nothing. The other keys
// take effect at the next start: sessions, connections and the database
// stay as they are.
func (d *daemon) reload() {
	cfg, _, err := loadConfig(d.path, d.cmd.getenv)
	if err != nil {
		d.log.WithError(err).WithFields(logrus.Fields{"config": d.path, "log_level": levelName(d.log.GetLevel())}).
			Error("qqgateway: SIGHUP: the configuration has errors; nothing reloaded, the log level and the admins stay")
		return
	}
	d.g.SetAdmins(cfg.Gateway.Admins)
	level, err := logrus.ParseLevel(string(cfg.Log.Level))
	if err != nil {
		level = logrus.InfoLevel // loadConfig checked it
	}
	old := d.log.GetLevel()
	e := d.log.WithFields(logrus.Fields{"config": d.path, "log_level": levelName(level), "was": levelName(old),
		"admins": len(cfg.Gateway.Admins)})
	msg := "qqgateway: SIGHUP: log level and admins reloaded; other keys take effect at the next start"
	// Said at info, at whichever of the two levels shows it.
	if level >= logrus.InfoLevel {
		d.log.SetLevel(level)
		e.Info(msg)
	} else {
		e.Info(msg)
		d.log.SetLevel(level)
	}
}

// levelName is a level as gateway.toml spells it.
func levelName(l logrus.Level) string {
	if l == logrus.WarnLevel {
		return "warn" // logrus says "warning"
	}
	return l.String()
}
