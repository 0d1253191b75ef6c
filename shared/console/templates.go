package console

// pageTemplates are every page, for html/template, which escapes each
// value by where it lands; nothing here is template.HTML.
const pageTemplates = `
{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>popspool: {{.Title}}</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top;font-size:90%}
th{background:#eee}
nav a{margin-right:1em}
.flash{background:#ffd;border:1px solid #cc9;padding:.5em;white-space:pre-wrap;font-family:monospace}
pre{background:#f6f6f6;border:1px solid #ddd;padding:.75em;overflow:auto}
form.inline{display:inline}
.bad{color:#a00}
</style></head><body>
<h1>popspool console</h1>
{{if .CSRF}}<nav><a href="/">overview</a><a href="/queue">queue</a><a href="/queue?folder=deferred">deferred</a><a href="/queue?folder=failed">failed</a><a href="/queue?folder=badmail">badmail</a>
<form class="inline" method="post" action="/logout"><input type="hidden" name="csrf" value="{{.CSRF}}"><button>log out</button></form></nav>{{end}}
{{if .Flash}}<div class="flash" id="flash">{{range .Flash}}{{.}}
{{end}}</div>{{end}}
{{end}}

{{define "foot"}}</body></html>{{end}}

{{define "login"}}{{template "head" .}}
<form method="post" action="/login">
<label>Token (the first line of the console's token file): <input type="password" name="token" id="token" autocomplete="current-password" autofocus></label>
<button id="login">log in</button>
</form>
{{template "foot" .}}{{end}}

{{define "overview"}}{{template "head" .}}
{{with .Data}}
<p>Spool {{.Spool}}</p>
{{if .Error}}<p class="bad">{{.Error}}</p>{{end}}
<h2>Daemons</h2>
<table id="daemons"><tr><th>daemon</th><th>state</th><th>started</th><th>last error</th></tr>
{{range .Daemons}}<tr><td>{{.Name}}</td><td>{{.State}}</td><td>{{.Since}}</td><td>{{.LastError}}</td></tr>
{{end}}</table>
<h2>Accounts</h2>
<table><tr><th>account</th><th>last poll</th><th>result</th><th>next poll</th><th>breaker</th><th>set aside on the server</th><th></th></tr>
{{range .Accounts}}<tr><td>{{.Name}}</td><td>{{.LastPoll}}</td><td>{{.Result}}</td><td>{{.NextPoll}}</td><td>{{.Breaker}}</td><td>{{.SetAside}}</td>
<td><form method="post" action="/retrieve"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="account" value="{{.Name}}"><button>Retrieve Now</button></form></td></tr>
{{end}}</table>
<form method="post" action="/retrieve"><input type="hidden" name="csrf" value="{{$.CSRF}}"><button>Retrieve Now (every account)</button></form>
<h2>Folders</h2>
<table><tr><th>folder</th><th>messages</th><th>held</th></tr>
{{range .Folders}}<tr><td>{{if eq .Name "in a daemon's hands"}}{{.Name}}{{else}}<a href="/queue?folder={{.Name}}">{{.Name}}</a>{{end}}</td><td>{{.Files}}</td><td>{{.Held}}</td></tr>
{{end}}</table>
{{end}}
{{template "foot" .}}{{end}}

{{define "queue"}}{{template "head" .}}
{{with .Data}}
<h2>Queue{{if .Folder}}: {{.Folder}}/{{end}}</h2>
{{if .Error}}<p class="bad">{{.Error}}</p>{{end}}
<p id="total">{{len .Rows}} message(s) listed of {{.Scanned}}</p>
<table id="queue"><tr><th>id</th><th>where</th><th>age</th><th>size</th><th>account</th><th>sender</th><th>recipients</th><th>from</th><th>subject</th><th>attempts</th><th>next attempt</th><th>last error</th><th>actions</th></tr>
{{range .Rows}}<tr id="row-{{.ID}}"><td><a href="/show?id={{.ID}}">{{.ID}}</a></td><td>{{.Where}}{{if .Held}} (held){{end}}{{if .Downloading}} (downloading){{end}}</td><td>{{.Age}}</td><td>{{.Size}}</td><td>{{.Account}}</td><td>&lt;{{.Sender}}&gt;</td><td>{{.Rcpts}}</td><td>{{.From}}</td><td>{{.Subject}}</td><td>{{.Attempts}}</td><td>{{.Next}}</td><td>{{.LastError}}{{.Failed}}{{range .Notes}} [{{.}}]{{end}}{{.Error}}</td>
<td><form class="inline" method="post" action="/act"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="id" value="{{.ID}}"><input type="hidden" name="folder" value="{{$.Data.Folder}}">
<button name="action" value="requeue" id="requeue-{{.ID}}">requeue</button>
{{if .Held}}<button name="action" value="release">release</button>{{else}}<button name="action" value="hold">hold</button>{{end}}
<button name="action" value="delete">delete</button></form></td></tr>
{{end}}</table>
{{end}}
{{template "foot" .}}{{end}}

{{define "confirm"}}{{template "head" .}}
{{with .Data}}
<h2>Delete for good?</h2>
<p>The ISP's server no longer has these messages: this is the only copy.</p>
<ul>{{range .IDs}}<li>{{.}}</li>{{end}}</ul>
<form method="post" action="/act"><input type="hidden" name="csrf" value="{{$.CSRF}}"><input type="hidden" name="action" value="delete">
<input type="hidden" name="confirm" value="yes"><input type="hidden" name="folder" value="{{.Folder}}">
{{range .IDs}}<input type="hidden" name="id" value="{{.}}">{{end}}
<button id="confirm-delete">delete</button> <a href="/queue">keep them</a></form>
{{end}}
{{template "foot" .}}{{end}}

{{define "show"}}{{template "head" .}}
<h2>Message {{.Data.ID}}</h2>
<pre id="story">{{.Data.Text}}</pre>
{{template "foot" .}}{{end}}
`
