module example.org/popspool/spooltest

go 1.26.0

require example.org/popspool/shared v0.0.0

replace example.org/popspool/shared => ../shared
