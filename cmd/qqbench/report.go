package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything a run measured; -json prints it as is (durations
// in nanoseconds).
type report struct {
	Users    int `json:"users"`
	Buddies  int `json:"buddies"`
	Pairs    int `json:"pairs"`
	Messages int `json:"messages_each_way"`
	// Yardstick is Prosody's client-to-client messages with every user
	// online, the base of the ratios; YardstickEmpty the same before any
	// user was online. Echo and EchoEmpty are the same messages through a
	// trivial component.
	Yardstick      phaseResult   `json:"yardstick"`
	YardstickEmpty phaseResult   `json:"yardstick_empty"`
	Echo           phaseResult   `json:"echo"`
	EchoEmpty      phaseResult   `json:"echo_empty"`
	ProsodyGC      string        `json:"prosody_gc,omitempty"`
	GCPercent      int           `json:"gateway_gc_percent,omitempty"`
	Online         onlineResult  `json:"online"`
	Idle           idleResult    `json:"idle"`
	Chat           phaseResult   `json:"chat"`
	Latency        latencyResult `json:"latency"`
	Burst          burstResult   `json:"burst"`
	Restart        time.Duration `json:"restart_all_logged_in_ns,omitempty"`
	// RestartAnnounced is from the gateway's start until it stopped sending:
	// every user was shown their buddies again.
	RestartAnnounced time.Duration `json:"restart_all_announced_ns,omitempty"`
	// RestartShownAtQuiet is how many buddies a user's client showed online
	// once the gateway was quiet, on average; RestartAllShown is when every
	// client showed every buddy online again (0: not within -stall).
	RestartShownAtQuiet float64       `json:"restart_buddies_shown_at_quiet"`
	RestartAllShown     time.Duration `json:"restart_all_shown_ns,omitempty"`
	// RestartCPU is each process's CPU from the gateway's start until it
	// stopped sending.
	RestartCPU     map[string]time.Duration `json:"restart_cpu_ns,omitempty"`
	RestartProfile string                   `json:"restart_profile,omitempty"`
	// The stanzas the gateway exchanged with Prosody: in the chat phase,
	// and from its restart until it stopped sending.
	ChatStanzas    stanzaCounts `json:"chat_stanzas"`
	RestartStanzas stanzaCounts `json:"restart_stanzas"`
	Total          totals       `json:"total"`
	Profile        string       `json:"profile,omitempty"`
	Heap           string       `json:"heap,omitempty"` // qqgateway's heap in use, every user online
}

// stanzaCounts are the gateway's counts of stanzas received from and sent
// to the XMPP server, and of its delivery pings.
// The store's commits and writes are counted with them.
type stanzaCounts struct {
	In       int `json:"received"`
	Out      int `json:"sent"`
	Barriers int `json:"delivery_pings"`
	Commits  int `json:"store_commits"`
	Writes   int `json:"store_writes"`
	// The gateway's relay latency histograms' sums (seconds) and counts,
	// to QQ (door to CLTMSG accepted) and to XMPP (fetched to confirmed).
	LatencySum [2]float64 `json:"latency_sum_s"`
	LatencyN   [2]float64 `json:"latency_n"`
}

// meanLatency is the mean relay latency in the gateway, each way, as text.
func (c stanzaCounts) meanLatency() string {
	var out [2]string
	for i := range out {
		out[i] = "—"
		if c.LatencyN[i] > 0 {
			out[i] = secs(time.Duration(c.LatencySum[i] / c.LatencyN[i] * float64(time.Second)))
		}
	}
	return out[0] + " / " + out[1]
}

func (c stanzaCounts) minus(d stanzaCounts) stanzaCounts {
	r := stanzaCounts{In: c.In - d.In, Out: c.Out - d.Out, Barriers: c.Barriers - d.Barriers,
		Commits: c.Commits - d.Commits, Writes: c.Writes - d.Writes}
	for i := range r.LatencySum {
		r.LatencySum[i], r.LatencyN[i] = c.LatencySum[i]-d.LatencySum[i], c.LatencyN[i]-d.LatencyN[i]
	}
	return r
}

// storePer is the store's commits and writes per n, as text.
func (c stanzaCounts) storePer(n int) string {
	if n <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f / %.2f", float64(c.Commits)/float64(n), float64(c.Writes)/float64(n))
}

// per is c divided by n, as text.
func (c stanzaCounts) per(n int) string {
	if n <= 0 {
		return "—"
	}
	f := float64(n)
	return fmt.Sprintf("%.2f / %.2f / %.3f", float64(c.In)/f, float64(c.Out)/f, float64(c.Barriers)/f)
}

type phaseResult struct {
	Sent      int                      `json:"sent"`
	Delivered int                      `json:"delivered"`
	Lost      int                      `json:"lost"`
	Doubled   int                      `json:"doubled"`
	Wall      time.Duration            `json:"wall_ns"`
	Rate      float64                  `json:"msgs_per_s"`
	CPUPerMsg map[string]time.Duration `json:"cpu_per_msg_ns"` // by process, idle subtracted
	Latency   latencies                `json:"latency"`
}

type onlineResult struct {
	Users       int              `json:"users"`
	Buddies     int              `json:"buddies"`
	Ready       time.Duration    `json:"all_subscribed_ns"`
	AllLoggedIn time.Duration    `json:"all_logged_in_ns"`
	RSSBefore   map[string]int64 `json:"rss_before_bytes"` // before the first login
	RSS         map[string]int64 `json:"rss_bytes"`
	RSSPerUser  map[string]int64 `json:"rss_per_user_bytes"`
}

type idleResult struct {
	Window                  time.Duration      `json:"window_ns"`
	CPU                     map[string]float64 `json:"cpu_cores"`
	QQRequestsPerUserMinute float64            `json:"qq_requests_per_user_minute"`
	// RSSPerUser is taken at the end of the window, against the RSS before
	// the first login: what the users cost at rest, once the collector
	// has caught up with the logins' garbage.
	RSSPerUser map[string]int64 `json:"rss_per_user_bytes"`
}

type latencyResult struct {
	Sent     int           `json:"sent"`
	Lost     int           `json:"lost"`
	Doubled  int           `json:"doubled"`
	Gap      time.Duration `json:"gap_ns"`
	ToQQ     latencies     `json:"xmpp_to_qq"`
	ToXMPP   latencies     `json:"qq_to_xmpp"`
	EndToEnd latencies     `json:"end_to_end"`
}

type burstResult struct {
	Messages     int           `json:"messages"`
	Lost         int           `json:"lost"`
	Doubled      int           `json:"doubled"`
	Queueing     time.Duration `json:"queueing_ns"`
	AllDelivered time.Duration `json:"all_delivered_ns"`     // from the first queued
	AfterQueued  time.Duration `json:"after_last_queued_ns"` // from the last queued
}

type totals struct {
	Sent        int    `json:"sent"`
	Lost        int    `json:"lost"`
	Doubled     int    `json:"doubled"`
	Unknown     int    `json:"unknown"` // arrivals of ids never sent
	Errors      int    `json:"errors"`  // message errors received
	FirstError  string `json:"first_error,omitempty"`
	UsersFailed int    `json:"users_failed"`
}

// ok reports whether the run lost, doubled or refused nothing.
func (r *report) ok() bool {
	t := r.Total
	return t.Lost == 0 && t.Doubled == 0 && t.Unknown == 0 && t.Errors == 0 && t.UsersFailed == 0
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }
func secs(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
func kB(b int64) string { return fmt.Sprintf("%.1f kB", float64(b)/1000) }

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f ×", a/b)
}

// gcPercent is the gateway's gc_percent as the table shows it.
func gcPercent(p int) string {
	if p == 0 {
		return "100 (Go's default)"
	}
	return strconv.Itoa(p)
}

// writeTable prints the figures as a Markdown table: figure, value, ratio
// to the yardstick where the issue asks for one, and the target.
func (r *report) writeTable(w io.Writer) {
	y := r.Yardstick
	yc := float64(y.CPUPerMsg["prosody"])
	c := r.Chat
	rows := [][4]string{
		{"Prosody c2c rate (yardstick, every user online)", fmt.Sprintf("%.0f msgs/s", y.Rate), "1", ""},
		{"Prosody CPU per c2c message (yardstick, every user online)", us(y.CPUPerMsg["prosody"]), "1", ""},
		{"the same before any user was online: rate / CPU per message", fmt.Sprintf("%.0f msgs/s / %s", r.YardstickEmpty.Rate, us(r.YardstickEmpty.CPUPerMsg["prosody"])),
			ratio(r.YardstickEmpty.Rate, y.Rate) + " / " + ratio(float64(r.YardstickEmpty.CPUPerMsg["prosody"]), yc), ""},
		{"echo: c2c through a trivial component (in qqbench), every user online: rate", fmt.Sprintf("%.0f msgs/s", r.Echo.Rate), ratio(r.Echo.Rate, y.Rate), ""},
		{"echo: Prosody CPU per message relayed by the trivial component", us(r.Echo.CPUPerMsg["prosody"]), ratio(float64(r.Echo.CPUPerMsg["prosody"]), yc), ""},
		{"echo before any user was online: rate / Prosody CPU per message", fmt.Sprintf("%.0f msgs/s / %s", r.EchoEmpty.Rate, us(r.EchoEmpty.CPUPerMsg["prosody"])),
			ratio(r.EchoEmpty.Rate, r.YardstickEmpty.Rate) + " / " + ratio(float64(r.EchoEmpty.CPUPerMsg["prosody"]), float64(r.YardstickEmpty.CPUPerMsg["prosody"])), "(÷ the empty yardstick)"},
		{"Prosody's garbage collector / qqgateway's gc_percent", cmp.Or(r.ProsodyGC, "Prosody's default (incremental)") + " / " +
			gcPercent(r.GCPercent), "", ""},
		{"users online / buddies each", fmt.Sprintf("%d / %d (failed %d)", r.Online.Users, r.Online.Buddies, r.Total.UsersFailed), "", "10,000, none failing"},
		{"all subscribed / all logged in to QQ", secs(r.Online.Ready) + " / " + secs(r.Online.AllLoggedIn), "", ""},
	}
	for _, p := range []string{"qqgateway", "prosody", "qqsim"} {
		rows = append(rows, [4]string{"RSS per online user, " + p + ": after the logins / at the end of the idle window",
			kB(r.Online.RSSPerUser[p]) + " / " + kB(r.Idle.RSSPerUser[p]),
			"", map[string]string{"qqgateway": "≤ 8 kB at 10,000 users"}[p]})
	}
	for _, p := range []string{"qqgateway", "prosody", "qqsim"} {
		rows = append(rows, [4]string{"idle CPU, " + p, fmt.Sprintf("%.1f %% of a core", 100*r.Idle.CPU[p]), "", ""})
	}
	rows = append(rows, [][4]string{
		{"QQ requests per idle user per minute", fmt.Sprintf("%.2f", r.Idle.QQRequestsPerUserMinute), "", "≤ 6"},
		{"relay: sent / lost / doubled", fmt.Sprintf("%d / %d / %d", c.Sent, c.Lost, c.Doubled), "", "0 lost, 0 doubled"},
		{"relay rate", fmt.Sprintf("%.0f msgs/s", c.Rate), ratio(c.Rate, y.Rate), "≥ 0.45 ×"},
		{"qqgateway CPU per relayed message", us(c.CPUPerMsg["qqgateway"]), ratio(float64(c.CPUPerMsg["qqgateway"]), yc), "≤ 0.5 ×"},
		{"Prosody CPU per relayed message", us(c.CPUPerMsg["prosody"]), ratio(float64(c.CPUPerMsg["prosody"]), yc), "≤ 2.5 ×"},
		{"qqsim CPU per relayed message", us(c.CPUPerMsg["qqsim"]), ratio(float64(c.CPUPerMsg["qqsim"]), yc), ""},
		{"qqbench (clients) CPU per relayed message", us(c.CPUPerMsg["qqbench"]), "", ""},
		{"stanzas per relayed message, gateway ⇄ Prosody: in / out / delivery pings", r.ChatStanzas.per(c.Sent), "", "1 / 1 / —"},
		{"qqgateway store per relayed message: commits / writes", r.ChatStanzas.storePer(c.Sent), "", ""},
		{"under load, mean time in qqgateway: door → QQ took it / fetched → XMPP server took it", r.ChatStanzas.meanLatency(), "", ""},
		{"relay latency XMPP→XMPP under load p50 / p99", secs(c.Latency.P50) + " / " + secs(c.Latency.P99), "", ""},
		{fmt.Sprintf("conversation (%v apart) XMPP→QQ p50 / p99", r.Latency.Gap), secs(r.Latency.ToQQ.P50) + " / " + secs(r.Latency.ToQQ.P99), "", ""},
		{"conversation QQ→XMPP p50 / p99", secs(r.Latency.ToXMPP.P50) + " / " + secs(r.Latency.ToXMPP.P99), "", "≤ 0.5 s / ≤ 1.5 s"},
		{fmt.Sprintf("backlog of %d queued on QQ for one user: all delivered", r.Burst.Messages),
			fmt.Sprintf("%s (queueing took %s; %s after the last)", secs(r.Burst.AllDelivered), secs(r.Burst.Queueing), secs(r.Burst.AfterQueued)), "", "≤ 2 s for 1,000"},
	}...)
	if r.Restart > 0 {
		rows = append(rows, [4]string{"gateway restart: all logged in to QQ", secs(r.Restart), "", "≤ 30 s at 10,000"})
		rows = append(rows, [4]string{"gateway restart: every buddy presence sent (the gateway quiet)", secs(r.RestartAnnounced), "", ""})
		rows = append(rows, [4]string{"restart: buddies a client shows online when the gateway is quiet", fmt.Sprintf("%.2f of %d", r.RestartShownAtQuiet, r.Buddies), "", ""})
		all := "not within -stall"
		if r.RestartAllShown > 0 {
			all = secs(r.RestartAllShown)
		}
		rows = append(rows, [4]string{"gateway restart: every client shows every buddy online", all, "", ""})
		c := r.RestartCPU
		rows = append(rows, [4]string{"restart CPU until quiet: qqgateway / prosody / qqsim / qqbench",
			fmt.Sprintf("%s / %s / %s / %s", secs(c["qqgateway"]), secs(c["prosody"]), secs(c["qqsim"]), secs(c["qqbench"])), "", ""})
		rows = append(rows, [4]string{"restart: stanzas per user, gateway ⇄ Prosody: in / out / delivery pings", r.RestartStanzas.per(r.Users), "", ""})
	}
	t := r.Total
	rows = append(rows, [4]string{"whole run: sent / lost / doubled / errors", fmt.Sprintf("%d / %d / %d / %d", t.Sent, t.Lost, t.Doubled, t.Errors), "", "0 lost, 0 doubled"})
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "| figure\t value\t ÷ yardstick\t target\t")
	fmt.Fprintln(tw, "|---\t---\t---\t---\t")
	for _, row := range rows {
		fmt.Fprintln(tw, "| "+strings.Join(row[:], "\t ")+"\t")
	}
	tw.Flush()
	if r.Heap != "" {
		fmt.Fprintf(w, "\nqqgateway heap in use with every user online:\n%s", r.Heap)
	}
	if r.Profile != "" {
		fmt.Fprintf(w, "\nqqgateway CPU profile of the relay phase:\n%s", r.Profile)
	}
	if r.RestartProfile != "" {
		fmt.Fprintf(w, "\nqqgateway CPU profile of the restart, until the gateway is quiet:\n%s", r.RestartProfile)
	}
}
