// The durable spool: the only code that touches queue files. A message is its content
// plus an envelope (sender, recipients each with its own delivery state). Commit rule:
// write a temp file, fsync it, rename it into place, fsync the directory; only then
// may the server say 250. The on-disk format is described in queue/format.hpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "queue/file_ops.hpp"

namespace tlsrelay::queue {

enum class RecipientState : std::uint8_t {
    pending = 0,   // never tried, or due now
    deferred = 1,  // a temporary failure; next_attempt says when to retry
    sent = 2,      // done: the remote server accepted it
    bounced = 3,   // done: permanent failure or expiry; the sender was told
};

std::string_view to_string(RecipientState s);

struct Recipient {
    std::string address;  // as given in RCPT TO, without brackets
    RecipientState state = RecipientState::pending;
    std::uint32_t attempts = 0;
    std::int64_t next_attempt = 0;  // unix seconds; 0: as soon as possible
    std::string last_dsn;           // e.g. "4.7.5"
    std::string last_reason;        // e.g. "Server certificate not verified"

    bool done() const { return state == RecipientState::sent || state == RecipientState::bounced; }
};

struct Envelope {
    std::string id;               // queue id, upper-case hex as in Postfix logs
    std::int64_t arrival_us = 0;  // unix time in microseconds
    std::string sender;           // "" is the null sender <>
    std::vector<Recipient> recipients;
    std::string client;           // "name[addr]" of the submitting client
    std::string helo;             // its EHLO/HELO argument (sanitised)
    bool smtputf8 = false;        // MAIL ... SMTPUTF8
    bool eight_bit = false;       // MAIL ... BODY=8BITMIME
    std::uint64_t size = 0;       // content bytes
    bool held = false;            // "queue hold": not delivered until released
};

// One message being received. Destroying it without commit() removes its temp file.
class Draft {
public:
    virtual ~Draft() = default;
    virtual const std::string& id() const = 0;
    // Appends content bytes (CRLF lines, dot-unstuffed). An error is final for this draft.
    virtual std::error_code append(std::string_view bytes) = 0;
    // Makes the message durable: blocking (fsync); call it off the network thread.
    // On error nothing of the message is left on disk. Safe to call concurrently for
    // different drafts (the directory fsync is shared between them). The id and size
    // are the draft's own; arrival_us 0 means now; recipients start pending; `held`
    // is the initial hold. Needs at least one recipient.
    virtual std::error_code commit(const Envelope& envelope) = 0;
    // The same without waiting for other commits: does the blocking part on this
    // thread, then calls done once the message is durable (or has failed), maybe later
    // on another thread: one running the directory fsync that this commit joined. The
    // caller may destroy the draft once done has been called; done must not block.
    using Committed = std::function<void(std::error_code)>;
    virtual void commit(const Envelope& envelope, Committed done) { done(commit(envelope)); }
};

struct OpenResult;

class Spool {
public:
    virtual ~Spool() = default;

    // Bytes free in the spool's file system (statvfs), for the 452 4.3.1 check at MAIL.
    virtual std::uint64_t free_bytes() const = 0;

    // Starts a message with a fresh queue id (creates a temp file).
    virtual std::unique_ptr<Draft> begin(std::error_code& ec) = 0;
    // The same with an id taken earlier from new_queue_id(), so a caller can name the
    // message (log it) before it touches the disk. Fails with file_exists if taken.
    virtual std::unique_ptr<Draft> begin(const std::string& id, std::error_code& ec) = 0;

    // Envelopes of every committed message, with their current delivery state.
    virtual std::vector<Envelope> list() = 0;
    virtual std::optional<Envelope> envelope(const std::string& id) = 0;
    virtual std::optional<std::string> content(const std::string& id) = 0;
    // What a delivery needs: the envelope with its current state and the content,
    // from one open and one full validation (as content(): a damaged file goes to
    // corrupt/). A held message is validated too, but its content is not handed out
    // (content is then nullopt).
    struct Loaded {
        Envelope envelope;
        std::optional<std::string> content;
    };
    virtual std::optional<Loaded> load(const std::string& id) = 0;

    // Records delivery state: each recipient's state, attempts, next attempt and last
    // DSN/reason. Not fsynced: a crash may bring back an older state, which only
    // repeats an attempt. Replaced whole by a rename, except a message's first state,
    // written in place: torn by a crash, it is ignored (all recipients pending again). The recipients must be the message's own, in order. `held` is
    // left as stored: only set_held() changes it, so a hold placed by another process
    // (the CLI) while a delivery was running is not undone by the delivery's update.
    virtual std::error_code update(const Envelope& envelope) = 0;
    virtual std::error_code remove(const std::string& id) = 0;  // durable (queue delete)
    // Removes a message whose recipients are all done, without waiting for the disk:
    // undone by a crash it is only delivered again, never lost.
    virtual std::error_code retire(const std::string& id) = 0;
    virtual std::error_code set_held(const std::string& id, bool held) = 0;

    // `queue flush` from another process: leaves a request the daemon picks up
    // (take_flush_request, polled every second) to re-read the queue and retry now.
    virtual std::error_code request_flush() = 0;
    virtual bool take_flush_request() = 0;
};

struct OpenResult {
    std::unique_ptr<Spool> spool;   // null when the directory cannot be used
    std::string error;              // why, when spool is null
    std::vector<std::string> notes; // recovery: temp files removed, files moved to corrupt/
};

// Opens (creating if needed) the spool directory and recovers it: removes temp files
// of messages never acknowledged, moves unreadable messages to corrupt/.
OpenResult open_spool(const std::filesystem::path& dir);
// The same with the syscalls behind `ops` (tests inject faults through it).
OpenResult open_spool(const std::filesystem::path& dir, const FileOps& ops);

// Queue ids are 14 upper-case hex digits: 8 for the unix second, 5 for the microsecond,
// 1 from a per-process counter; an exclusive create makes them unique.
bool is_queue_id(std::string_view text);

// A fresh queue id (time in microseconds plus a per-process counter); no I/O.
std::string new_queue_id();

}  // namespace tlsrelay::queue
