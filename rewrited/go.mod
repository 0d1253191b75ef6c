module example.org/popspool/rewrited

go 1.26.0

require (
	example.org/popspool/shared v0.0.0
	example.org/popspool/spooltest v0.0.0
	github.com/rs/zerolog v1.35.1
)

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/emersion/go-message v0.18.2
	github.com/fsnotify/fsnotify v1.10.1 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace example.org/popspool/shared => ../shared

replace example.org/popspool/spooltest => ../spooltest
