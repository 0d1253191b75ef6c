module example.org/popspool/fetchd

go 1.26.0

require example.org/popspool/shared v0.0.0

replace example.org/popspool/shared => ../shared

require (
	example.org/popspool/spooltest v0.0.0
	github.com/rs/zerolog v1.35.1
	golang.org/x/oauth2 v0.38.0
)

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/fsnotify/fsnotify v1.10.1 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace example.org/popspool/spooltest => ../spooltest
