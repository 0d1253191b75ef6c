package event

import "github.com/rs/zerolog"

const (
	info  = zerolog.InfoLevel
	warn  = zerolog.WarnLevel
	errl  = zerolog.ErrorLevel
	fatal = zerolog.FatalLevel
)

// Spool and daemon life cycle.
var (
	Started         = def(1001, "daemon started", info)
	Stopped         = def(1002, "daemon stopped", info)
	FolderCreated   = def(1003, "spool folder created", info)
	SpoolLocked     = def(1004, "another instance holds the spool lock", fatal)
	SpoolSplit      = def(1005, "spool folders on different filesystems", fatal)
	ConfigInvalid   = def(1006, "configuration invalid", fatal)
	DiskFull        = def(1007, "spool write failed for lack of space", errl)
	SpoolIO         = def(1008, "spool I/O error", errl)
	DirSyncFailed   = def(1009, "folder fsync failed; exiting so recovery runs", fatal)
	WatchOverflow   = def(1010, "folder watch lost events; rescanning", warn)
	Recovered       = def(1011, "unfinished work recovered at start", warn)
	Renamed         = def(1012, "operator file given a spool id", info)
	JournalTorn     = def(1013, "torn journal tail truncated", warn)
	WatchFailed     = def(1014, "folder watch unavailable; polling only", warn)
	ConfigReloaded  = def(1015, "configuration reloaded", info)
	ReloadFailed    = def(1016, "configuration reload failed; old one kept", errl)
	NameCollision   = def(1017, "destination name taken; file renamed", warn)
	UnexpectedPanic = def(1018, "internal error while handling a file", errl)
	StoppedOnError  = def(1019, "daemon stopped on an error", fatal)
	StatusFailed    = def(1020, "status file could not be written", warn)
	MetricsOn       = def(1021, "metrics endpoint listening", info)
	MetricsFailed   = def(1022, "metrics endpoint could not start", errl)
	NotifyFailed    = def(1023, "service manager notification failed", warn)
	// Issue 16 (journal and ledger).
	JournalDamaged = def(1030, "damaged journal records skipped; the good ones after them kept", errl)
)

// fetchd.
var (
	FetchSession   = def(2001, "mailbox polled", info)
	Fetched        = def(2002, "message fetched", info)
	ConnectFailed  = def(2003, "cannot connect to POP3 server", errl)
	TLSFailed      = def(2004, "TLS handshake or certificate check failed", errl)
	LoginFailed    = def(2005, "POP3 login refused", errl)
	MailboxInUse   = def(2006, "mailbox in use or login delayed; backing off", warn)
	ProtocolError  = def(2007, "POP3 server reply not understood", errl)
	SessionCut     = def(2008, "POP3 session cut; nothing lost, resuming next poll", warn)
	SizeMismatch   = def(2009, "message size differs from LIST", warn)
	Redeleted      = def(2010, "already fetched message deleted again", info)
	NoUIDL         = def(2011, "server lacks UIDL; using header digest", warn)
	Secret         = def(2012, "password could not be read", errl)
	Plaintext      = def(2013, "refusing to send password without TLS", errl)
	UIDLRejected   = def(2014, "server sent an invalid unique id", errl)
	TooBig         = def(2015, "message larger than max_size left on server", warn)
	RetrieveNow    = def(2016, "retrieve-now requested", info)
	JournalPrune   = def(2017, "UIDL journal compacted", info)
	SessionTimeout = def(2018, "POP3 server did not answer in time", warn)
	NameUnresolved = def(2019, "POP3 server name does not resolve", errl)
	AuthNotOffered = def(2020, "server does not offer the configured login method", errl)
	LoginStopped   = def(2021, "polling stopped after repeated refused logins", errl)
	LoginResumed   = def(2022, "account settings changed; polling resumed", info)
	LoginDelay     = def(2023, "server's LOGIN-DELAY honoured", info)
	ExpireSooner   = def(2024, "server deletes kept mail sooner than keep/keep_days", warn)
	OversizeStub   = def(2025, "header of an oversize message stored with a notice", warn)
	TokenFailed    = def(2026, "OAuth access token could not be read", errl)
	CertExpiring   = def(2027, "server certificate expires soon", warn)
	ServerTempFail = def(2028, "POP3 server failed temporarily; backing off", warn)
	BackOff        = def(2029, "next poll delayed after failures", info)
	JournalFailed  = def(2030, "UIDL journal write failed; fetching stopped", fatal)
)

// rewrited.
var (
	Routed        = def(3001, "message routed", info)
	RouteFailed   = def(3002, "message could not be routed; moved to failed/", warn)
	HeaderBroken  = def(3003, "message header unreadable; moved to failed/", warn)
	NoRecipient   = def(3004, "no recipient for message; moved to failed/", warn)
	FileVanished  = def(3005, "file vanished before it could be read", info)
	RewriteStuck  = def(3006, "file failed repeatedly; quarantined in failed/", errl)
	EmptyMessage  = def(3007, "empty message; moved to failed/", warn)
	EnvelopeFixed = def(3008, "old envelope lines replaced", info)
	MailLoop      = def(3009, "mail loop: message passed popspool too often; moved to failed/", errl)
	SenderBlocked = def(3010, "sender blocked; moved to failed/", warn)
	RcptBlocked   = def(3011, "recipient blocked", warn)
	FilterReject  = def(3012, "filter command rejected message; moved to failed/", warn)
	FilterBroken  = def(3013, "filter command failed; message passed unfiltered", errl)
	Unrouted      = def(3014, "no local recipient; sent to unrouted_to", warn)
	FilterTagged  = def(3015, "filter command flagged message; tagged", info)
)

// deliverd.
var (
	Delivered       = def(4001, "message delivered", info)
	Deferred        = def(4002, "delivery failed temporarily; deferred", warn)
	Bounced         = def(4003, "delivery failed permanently; moved to badmail/", errl)
	Expired         = def(4004, "delivery retried until expiry; moved to badmail/", errl)
	DuplicateSkip   = def(4005, "message already delivered; copy removed", warn)
	SMTPWindow      = def(4006, "connection lost after final dot; outcome unknown, retrying", warn)
	TargetDown      = def(4007, "cannot connect to delivery target", errl)
	NoEnvelope      = def(4008, "spool file has no envelope; moved to badmail/", errl)
	LedgerRecovered = def(4010, "delivery ledger replayed at start", info)
	PartialDelivery = def(4011, "some recipients delivered, others deferred", warn)
	RetryNow        = def(4012, "deferred message due; retrying", info)
	DSNSent         = def(4013, "delivery status notification queued", info)
	DSNSuppressed   = def(4014, "no DSN sent: the message is itself a bounce, or nobody to notify", warn)
	DSNFailed       = def(4015, "delivery status notification could not be written", errl)
	TooBigForTarget = def(4016, "message larger than the target's SIZE; bounced without retrying", errl)
	LedgerFailed    = def(4017, "delivery ledger write or fsync failed; exiting so recovery runs", fatal)
	TargetRefused   = def(4018, "target refused the session (greeting, EHLO, STARTTLS or AUTH)", errl)
	SessionLost     = def(4019, "session with the delivery target broke off before the final dot; retrying", warn)
	// Issue 16 (journal and ledger).
	LocalRepeated       = def(4027, "the same local error met again and again; moved to badmail/ with a DSN", errl)
	LedgerCompacted     = def(4028, "delivery ledger compacted while running", info)
	LedgerCompactFailed = def(4029, "delivery ledger could not be compacted", errl)
)
