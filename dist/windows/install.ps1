# install.ps1: installs popspool as three Windows services (popspool-fetchd,
# popspool-rewrited, popspool-deliverd). Run it as Administrator from the
# folder holding fetchd.exe, rewrited.exe, deliverd.exe and
# popspool.toml.example ("make windows" puts them in bin\windows).
# The first run writes the config and stops: edit it, then run it again.
# See docs/operations.md, "Windows".
param(
    [string]$Dir = "$env:ProgramFiles\popspool",   # the programs
    [string]$Data = "$env:ProgramData\popspool"    # the config and the spool
)
$ErrorActionPreference = 'Stop'
$daemons = 'fetchd', 'rewrited', 'deliverd'
$config = Join-Path $Data 'popspool.toml'
$spool = Join-Path $Data 'spool'

New-Item -ItemType Directory -Force -Path $Dir, $Data, $spool | Out-Null
# Mail is private: only Administrators and SYSTEM (and, below, the services).
icacls $Data /inheritance:r /grant:r 'Administrators:(OI)(CI)F' 'SYSTEM:(OI)(CI)F' | Out-Null

if (-not (Test-Path $config)) {
    # Forward slashes: Go takes them on Windows, and TOML needs no escapes.
    $d = $Data -replace '\\', '/'
    (Get-Content (Join-Path $PSScriptRoot 'popspool.toml.example')) `
        -replace '^spool = .*', "spool = `"$d/spool`"" `
        -replace '/etc/popspool/', "$d/" | Set-Content -Encoding UTF8 $config
    Write-Host "Wrote $config. Edit it (accounts, password files in $Data, the [deliver] target),"
    Write-Host "check it with:  & '$Dir\fetchd.exe' check -config '$config'   and run this script again."
    foreach ($n in $daemons) { Copy-Item (Join-Path $PSScriptRoot "$n.exe") $Dir -Force }
    exit 1
}

foreach ($n in $daemons) {
    $svc = Get-Service "popspool-$n" -ErrorAction SilentlyContinue
    if ($svc) { & "$Dir\$n.exe" service stop; & "$Dir\$n.exe" service uninstall }
    Copy-Item (Join-Path $PSScriptRoot "$n.exe") $Dir -Force
    & "$Dir\$n.exe" service install -config $config
    if ($LASTEXITCODE) { exit $LASTEXITCODE }
    # Each service runs as its own virtual account: read the config, change the spool.
    icacls $Data /grant "NT SERVICE\popspool-${n}:(OI)(CI)RX" | Out-Null
    icacls $spool /grant "NT SERVICE\popspool-${n}:(OI)(CI)M" | Out-Null
}
foreach ($n in $daemons) { & "$Dir\$n.exe" service start }
Start-Sleep -Seconds 5
& "$Dir\fetchd.exe" status -config $config
