package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"example.org/popspool/shared/admin"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/status"
)

// page is what every template gets.
type page struct {
	Title string
	CSRF  string
	Flash []string
	Data  any
}

func (s *server) render(w http.ResponseWriter, name string, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, p); err != nil {
		s.log.Error().Err(err).Str("page", name).Msg("console: page failed")
		http.Error(w, "the page could not be made; see the log", http.StatusInternalServerError)
		return
	}
	w.Write(b.Bytes())
}

func (s *server) page(ss *session, title string, data any) page {
	return page{Title: title, CSRF: ss.csrf, Flash: s.takeFlash(ss), Data: data}
}

type daemonRow struct{ Name, State, Since, LastError string }

type accountRow struct {
	Name, LastPoll, Result, NextPoll, Breaker string
	SetAside                                  int
}

type folderRow struct {
	Name  string
	Files int
	Held  int
}

type overviewData struct {
	Spool    string
	Daemons  []daemonRow
	Accounts []accountRow
	Folders  []folderRow
	Error    string
}

func (s *server) overview(w http.ResponseWriter, r *http.Request, ss *session) {
	d := overviewData{Spool: s.cfg.Spool}
	files := map[string]*status.File{}
	for _, name := range spool.Daemons {
		f, err := status.Load(s.cfg.Spool, name)
		row := daemonRow{Name: name}
		switch {
		case errors.Is(err, os.ErrNotExist):
			row.State = "never started on this spool"
		case err != nil:
			row.State = "status file unreadable: " + err.Error()
		default:
			files[name] = f
			row.State, row.Since = f.State, ago(f.Started)
			if f.State == "running" && time.Since(f.Updated) > status.Stale {
				row.State = "gone (status not updated for " + status.Age(time.Since(f.Updated)) + ")"
			}
			if f.LastError != nil {
				row.LastError = fmt.Sprintf("%d %s (%s)", f.LastError.Event, f.LastError.Name, ago(f.LastError.Time))
			}
		}
		d.Daemons = append(d.Daemons, row)
	}
	var known map[string]*status.Account
	if f := files["fetchd"]; f != nil {
		known = f.Accounts
	}
	for _, acc := range s.cfg.Account {
		d.Accounts = append(d.Accounts, accountOf(acc.Name, time.Duration(acc.Interval), known[acc.Name]))
	}
	entries, _, err := admin.Entries(s.cfg, admin.Filter{})
	if err != nil {
		d.Error = err.Error()
	}
	d.Folders = folderCounts(entries)
	s.render(w, "overview", s.page(ss, "overview", d))
}

func accountOf(name string, interval time.Duration, a *status.Account) accountRow {
	row := accountRow{Name: name, LastPoll: "-", Result: "not polled since fetchd started", NextPoll: "-", Breaker: "closed"}
	if a == nil {
		return row
	}
	row.SetAside = a.SetAside
	if !a.LastPoll.IsZero() {
		row.LastPoll = ago(a.LastPoll)
		row.Result = fmt.Sprintf("ok, %d fetched (%d since start)", a.Fetched, a.Total)
		if interval > 0 {
			row.NextPoll = "in about " + status.Age(time.Until(a.LastPoll.Add(interval)))
			if time.Until(a.LastPoll.Add(interval)) <= 0 {
				row.NextPoll = "due now"
			}
		}
	}
	if e := a.LastError; e != nil && e.Time.After(a.LastOK) {
		row.Result = fmt.Sprintf("FAILED: %d %s", e.Event, e.Name)
		if e.Event == int(event.LoginStopped) {
			row.Breaker = "open: polling stopped after refused logins (Retrieve Now resumes it)"
			row.NextPoll = "stopped"
		}
	}
	return row
}

// folderCounts counts the entries of each folder, in pipeline order.
func folderCounts(entries []admin.Entry) []folderRow {
	order := []string{spool.Incoming, spool.Pickup, spool.Deferred, spool.Failed, spool.Badmail, spool.Duplicates}
	rows := make([]folderRow, len(order))
	for i, f := range order {
		rows[i].Name = f
	}
	inHand := folderRow{Name: "in a daemon's hands"}
	for _, e := range entries {
		i := slices.Index(order, e.Where)
		row := &inHand
		if i >= 0 {
			row = &rows[i]
		}
		row.Files++
		if e.Held {
			row.Held++
		}
	}
	return append(rows, inHand)
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return status.Age(time.Since(t)) + " ago"
}

type queueRow struct {
	admin.Entry
	Age, Next, Rcpts string
	From, Subject    string // from the header: attacker-controlled
}

type queueData struct {
	Rows    []queueRow
	Scanned int
	Folder  string
	Error   string
}

func (s *server) queue(w http.ResponseWriter, r *http.Request, ss *session) {
	var f admin.Filter
	folder := r.URL.Query().Get("folder")
	if folder != "" {
		f.Folders = []string{folder}
	}
	d := queueData{Folder: folder}
	entries, scanned, err := admin.Entries(s.cfg, f)
	if err != nil {
		d.Error = err.Error()
	}
	d.Scanned = scanned
	for _, e := range entries {
		row := queueRow{Entry: e, Age: status.Age(time.Duration(e.AgeSeconds) * time.Second), Next: "-"}
		row.From, row.Subject = fromSubject(e.Path)
		if !e.NextAttempt.IsZero() {
			row.Next = e.NextAttempt.Local().Format("2006-01-02 15:04:05")
		}
		rcpts := e.Recipients
		if len(rcpts) == 0 {
			rcpts = e.HeaderTo
		}
		row.Rcpts = strings.Join(rcpts, ", ")
		d.Rows = append(d.Rows, row)
	}
	s.render(w, "queue", s.page(ss, "queue", d))
}

type showData struct{ ID, Text string }

func (s *server) show(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.URL.Query().Get("id")
	var b bytes.Buffer
	if err := admin.Show(s.cfg, id, &b); err != nil {
		fmt.Fprintf(&b, "\n%v\n", err)
	}
	s.render(w, "show", s.page(ss, "message "+id, showData{ID: id, Text: b.String()}))
}

// act is a button of the queue page: requeue, hold, release or delete.
func (s *server) act(w http.ResponseWriter, r *http.Request, ss *session) {
	do := map[string]func(*admin.Actions, []string) (int, error){
		"requeue": (*admin.Actions).Requeue, "hold": (*admin.Actions).Hold,
		"release": (*admin.Actions).Release, "delete": (*admin.Actions).Delete,
	}[r.PostFormValue("action")]
	ids := r.PostForm["id"]
	if do == nil || len(ids) == 0 {
		http.Error(w, "act takes an action (requeue, hold, release, delete) and ids", http.StatusBadRequest)
		return
	}
	if r.PostFormValue("action") == "delete" && r.PostFormValue("confirm") != "yes" {
		s.render(w, "confirm", s.page(ss, "delete?", confirmData{IDs: ids, Folder: r.PostFormValue("folder")}))
		return
	}
	back := "/queue"
	if folder := r.PostFormValue("folder"); folder != "" {
		back += "?folder=" + url.QueryEscape(folder)
	}
	var out bytes.Buffer
	a, err := admin.Open(s.cfg.Spool, &out)
	if err != nil {
		s.setFlash(ss, &out, err.Error())
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	n, _ := do(a, ids) // each failure is a line of out
	extra := []string{fmt.Sprintf("%s: %d file(s) acted on", r.PostFormValue("action"), n)}
	if err := a.Close(); err != nil {
		extra = append(extra, "status/actions.log: "+err.Error())
	}
	s.setFlash(ss, &out, extra...)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

type confirmData struct {
	IDs    []string
	Folder string
}

// retrieve is Retrieve Now, for one account or (account empty) all.
func (s *server) retrieve(w http.ResponseWriter, r *http.Request, ss *session) {
	var out bytes.Buffer
	a, err := admin.Open(s.cfg.Spool, &out)
	if err == nil {
		_, err = a.RetrieveNow(s.cfg, r.PostFormValue("account"), false, 3*time.Second)
		err = errors.Join(err, a.Close())
	}
	var extra []string
	if err != nil {
		extra = append(extra, err.Error())
	}
	s.setFlash(ss, &out, extra...)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

var templates = template.Must(template.New("").Parse(pageTemplates))
