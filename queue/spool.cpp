// The file-system Spool: reading envelopes and content, and durable delivery-state
// updates. A CLI process may act on the spool while the daemon runs: every
// read-modify-write of a message's state holds flock(LOCK_EX) on its message file.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "queue/format.hpp"
#include "queue/spool_core.hpp"
#include "support/log.hpp"

namespace tlsrelay::queue {

std::string_view to_string(RecipientState s) {
    switch (s) {
    case RecipientState::pending: return "pending";
    case RecipientState::deferred: return "deferred";
    case RecipientState::sent: return "sent";
    case RecipientState::bounced: return "bounced";
    }
    return "unknown";
}

namespace {

bool same_recipients(const Envelope& a, const Envelope& b) {
    return std::equal(a.recipients.begin(), a.recipients.end(), b.recipients.begin(),
                      b.recipients.end(),
                      [](const Recipient& x, const Recipient& y) { return x.address == y.address; });
}

class FsSpool final : public Spool {
public:
    explicit FsSpool(std::shared_ptr<SpoolCore> core) : core_(std::move(core)) {}

    std::uint64_t free_bytes() const override;
    std::unique_ptr<Draft> begin(std::error_code& ec) override { return begin_draft(core_, "", ec); }

    std::error_code request_flush() override {
        std::error_code ec;
        io::Fd fd = io::open_file(core_->dir / "flush", O_WRONLY | O_CREAT, ec, 0600);
        return ec;
    }
    bool take_flush_request() override {
        return ::unlink((core_->dir / "flush").c_str()) == 0;
    }
    std::unique_ptr<Draft> begin(const std::string& id, std::error_code& ec) override {
        return begin_draft(core_, id, ec);
    }
    std::vector<Envelope> list() override;
    std::optional<Envelope> envelope(const std::string& id) override;
    std::optional<std::string> content(const std::string& id) override;
    std::optional<Loaded> load(const std::string& id) override;
    std::error_code update(const Envelope& envelope) override;
    std::error_code remove(const std::string& id) override;
    std::error_code set_held(const std::string& id, bool held) override;

private:
    // A locked message file and its size (taken from the one fstat that also tells
    // whether it was unlinked), so that readers need not ask again.
    struct Locked {
        io::Fd fd;
        std::uint64_t size = 0;
    };
    Locked open_locked(const std::string& id, int op, std::error_code& ec);
    std::error_code current(const Locked& file, const std::string& id, Envelope& out,
                            bool* has_state_file = nullptr);
    bool apply_state_file(Envelope& envelope);
    bool read_whole(const Locked& file, const std::string& id, Envelope& e, std::string& content);
    std::error_code write_state(const Envelope& envelope, bool durable, bool first = false);
    std::error_code write_first_state(const Envelope& envelope);
    void give_to_spool_owner(int fd) const;
    std::error_code retire(const std::string& id) override;

    std::shared_ptr<SpoolCore> core_;
    mutable std::atomic<bool> nothing_to_give_{false};
};

std::uint64_t FsSpool::free_bytes() const {
    struct statvfs st {};
    if (::statvfs(core_->dir.c_str(), &st) != 0) return 0;  // unknown: refuse mail
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

// Opens messages/<id> and locks it; a file removed while we waited is "not found".
FsSpool::Locked FsSpool::open_locked(const std::string& id, int op, std::error_code& ec) {
    ec = std::make_error_code(std::errc::no_such_file_or_directory);
    if (!is_queue_id(id)) return {};
    Locked out{io::open_file(core_->message_path(id), O_RDONLY, ec)};
    if (!ec) ec = io::lock(out.fd.get(), op);
    struct stat st {};
    if (!ec && ::fstat(out.fd.get(), &st) != 0) ec = io::errno_code();
    if (!ec && st.st_nlink == 0) ec = std::make_error_code(std::errc::no_such_file_or_directory);
    if (ec) return {};
    out.size = static_cast<std::uint64_t>(st.st_size);
    return out;
}

// The message's envelope with its state file applied.
std::error_code FsSpool::current(const Locked& file, const std::string& id, Envelope& out,
                                 bool* has_state_file) {
    Envelope e;
    format::Check c = format::read_envelope(file.fd.get(), file.size, e);
    if (c.ok() && e.id != id) c.why = "id record does not match the file name";
    if (!c.ok()) {
        support::log_warning("queue", id + ": cannot read envelope: " + c.why);
        return std::make_error_code(c.io_error ? std::errc::io_error : std::errc::bad_message);
    }
    bool found = apply_state_file(e);
    if (has_state_file) *has_state_file = found;
    out = std::move(e);
    return {};
}

// True when the message has a state file, whether or not it could be used.
bool FsSpool::apply_state_file(Envelope& e) {
    std::string file;
    std::error_code ec = io::read_file(core_->state_path(e.id), file);
    if (ec == std::errc::no_such_file_or_directory) return false;  // initial state
    format::Check c = ec ? format::Check{"read error: " + ec.message(), true}
                         : format::apply_state(file, e);
    if (!c.ok())  // start over from the envelope: duplicates, never loss
        support::log_warning("queue", e.id + ": ignoring state file: " + c.why);
    return true;
}

std::vector<Envelope> FsSpool::list() {
    std::vector<Envelope> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(core_->messages, ec)) {
        std::string name = entry.path().filename().string();
        if (!is_queue_id(name)) continue;
        if (auto e = envelope(name)) out.push_back(std::move(*e));
    }
    std::sort(out.begin(), out.end(), [](const Envelope& a, const Envelope& b) {
        return a.arrival_us != b.arrival_us ? a.arrival_us < b.arrival_us : a.id < b.id;
    });
    return out;
}

std::optional<Envelope> FsSpool::envelope(const std::string& id) {
    std::error_code ec;
    Locked file = open_locked(id, LOCK_SH, ec);
    Envelope e;
    if (ec || current(file, id, e)) return std::nullopt;
    return e;
}

std::optional<std::string> FsSpool::content(const std::string& id) {
    std::error_code ec;
    Locked file = open_locked(id, LOCK_SH, ec);
    if (ec) return std::nullopt;
    Envelope e;
    std::string content;
    if (!read_whole(file, id, e, content)) return std::nullopt;
    return content;
}

// Full validation of an open, locked message file; false (logged, and a damaged file
// moved to corrupt/) when it must not be delivered.
bool FsSpool::read_whole(const Locked& file, const std::string& id, Envelope& e,
                         std::string& content) {
    format::Check c = format::read_message(file.fd.get(), file.size, e, &content);
    if (c.ok() && e.id != id) c.why = "id record does not match the file name";
    if (c.ok()) return true;
    if (c.io_error)
        support::log_warning("queue", id + ": cannot read: " + c.why);
    else  // damaged after start-up: never deliver it, keep it for a human
        support::log_warning("queue", move_to_corrupt(*core_, id, c.why));
    return false;
}

// One pass over the file gives the envelope and the content; only a damaged file is
// read again, for the envelope alone, so the caller still learns which message it was.
std::optional<Spool::Loaded> FsSpool::load(const std::string& id) {
    std::error_code ec;
    Locked file = open_locked(id, LOCK_SH, ec);
    if (ec) return std::nullopt;
    Loaded out;
    std::string content;
    if (read_whole(file, id, out.envelope, content)) {
        apply_state_file(out.envelope);
        if (!out.envelope.held) out.content = std::move(content);
        return out;
    }
    if (current(file, id, out.envelope)) return std::nullopt;
    return out;
}

std::error_code FsSpool::update(const Envelope& envelope) {
    std::error_code ec;
    Locked file = open_locked(envelope.id, LOCK_EX, ec);
    Envelope stored;
    bool has_state_file = false;
    if (ec || (ec = current(file, envelope.id, stored, &has_state_file))) return ec;
    if (!same_recipients(stored, envelope)) return std::make_error_code(std::errc::invalid_argument);
    stored.recipients = envelope.recipients;  // `held` stays as stored: see queue.hpp
    return write_state(stored, false, !has_state_file);
}

std::error_code FsSpool::set_held(const std::string& id, bool held) {
    std::error_code ec;
    Locked file = open_locked(id, LOCK_EX, ec);
    Envelope stored;
    if (ec || (ec = current(file, id, stored))) return ec;
    stored.held = held;
    return write_state(stored, true);
}

// state/<id>.tmp, fsync, close, rename over state/<id>, fsync state/. Caller holds LOCK_EX.
// Delivery progress is written without the fsyncs (durable = false), as Postfix marks
// recipients done: the rename still replaces the old state whole, and state lost in a
// crash only makes a recipient be tried again (a duplicate, never a loss). A hold
// placed by an administrator is made durable.
// `queue hold` run as root on the spool of a daemon that dropped privileges: the state
// file it writes must stay readable by that daemon, so it gets the directory's owner.
// Nothing to give, once found, stays so for the process: one that is not root never
// becomes root again (the daemon gives root up with setuid()), and a root-owned spool
// is only handed to a user by a daemon about to drop root (give_spool_to).
void FsSpool::give_to_spool_owner(int fd) const {
    if (nothing_to_give_.load(std::memory_order_relaxed)) return;
    struct stat dir {};
    bool root = ::geteuid() == 0;
    if (root && ::fstat(core_->state_fd.get(), &dir) != 0) return;
    if (!root || dir.st_uid == 0) {
        nothing_to_give_.store(true, std::memory_order_relaxed);
        return;
    }
    if (::fchown(fd, dir.st_uid, dir.st_gid) != 0)
        support::log_warning("queue", "cannot give a state file to the spool's owner");
}

std::error_code FsSpool::write_state(const Envelope& envelope, bool durable, bool first) {
    if (first && !durable) return write_first_state(envelope);
    const FileOps& ops = core_->ops;
    std::filesystem::path tmp = core_->state / (envelope.id + ".tmp");
    std::error_code ec;
    io::Fd fd = io::open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, ec, 0600);
    if (ec) return ec;
    give_to_spool_owner(fd.get());
    ec = io::write_all(ops, fd.get(), format::encode_state(envelope));
    if (!ec && durable) ec = io::sync(ops, fd.get());
    if (!ec) ec = io::close_checked(ops, fd);
    if (!ec) ec = io::rename(ops, tmp, core_->state_path(envelope.id), false);
    if (ec) {
        fd.reset();
        io::unlink(tmp);  // the previous state file, if any, is still whole
        return ec;
    }
    return durable ? io::sync(ops, core_->state_fd.get()) : std::error_code{};
}

// The first delivery progress of a message goes straight to state/<id>, without a
// temp file and a rename: under LOCK_EX nobody reads it half-written, and a file torn
// by a crash is ignored at the next read, which gives back the state before this one
// (every recipient pending), as losing an unsynced update would.
std::error_code FsSpool::write_first_state(const Envelope& envelope) {
    const FileOps& ops = core_->ops;
    std::filesystem::path path = core_->state_path(envelope.id);
    std::error_code ec;
    io::Fd fd = io::open_file(path, O_WRONLY | O_CREAT | O_EXCL, ec, 0600);
    if (ec == std::errc::file_exists) return write_state(envelope, false);
    if (ec) return ec;
    give_to_spool_owner(fd.get());
    ec = io::write_all(ops, fd.get(), format::encode_state(envelope));
    if (!ec) ec = io::close_checked(ops, fd);
    if (ec) {
        fd.reset();
        io::unlink(path);
    }
    return ec;
}

// Every recipient is done: unlink without waiting for the disk. If a crash undoes the
// unlink, the message is delivered again (a duplicate, never a loss).
std::error_code FsSpool::retire(const std::string& id) {
    std::error_code ec;
    Locked file = open_locked(id, LOCK_EX, ec);
    if (ec) return ec;
    io::unlink(core_->state_path(id));
    file.fd.reset();  // the file must not carry our lock into the draft that reuses it
    core_->recycle(core_->message_path(id));  // its inode serves a later message
    return {};
}

// Unlinks the message, then its state; a crash in between leaves an orphan state file
// that the next open removes. A lost unlink only means a duplicate.
std::error_code FsSpool::remove(const std::string& id) {
    std::error_code ec;
    Locked file = open_locked(id, LOCK_EX, ec);
    if (ec) return ec;
    if ((ec = io::unlink(core_->message_path(id)))) return ec;
    std::error_code state_ec = io::unlink(core_->state_path(id));
    if ((ec = io::sync(core_->ops, core_->messages_fd.get()))) return ec;
    if (state_ec) return state_ec;
    return io::sync(core_->ops, core_->state_fd.get());
}

}  // namespace

std::unique_ptr<Spool> make_fs_spool(std::shared_ptr<SpoolCore> core) {
    return std::make_unique<FsSpool>(std::move(core));
}

std::string move_to_corrupt(const SpoolCore& core, const std::string& name,
                            const std::string& why) {
    std::string shown = support::printable(name);
    for (int i = 0; i < 100; ++i) {
        std::string target = i == 0 ? name : name + "." + std::to_string(i);
        std::error_code ec = io::rename(core.ops, core.messages / name, core.corrupt / target, true);
        if (ec == std::errc::file_exists) continue;
        if (ec) return shown + ": cannot move to corrupt/: " + ec.message() + ": " + why;
        io::sync(core.ops, core.messages_fd.get());
        io::sync(core.ops, core.corrupt_fd.get());
        std::string as = i == 0 ? "" : " as " + support::printable(target);
        return shown + ": moved to corrupt/" + as + ": " + why;
    }
    return shown + ": cannot move to corrupt/: too many files of that name: " + why;
}

}  // namespace tlsrelay::queue
