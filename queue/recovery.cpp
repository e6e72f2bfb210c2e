// open_spool(): creates the layout and recovers it after a crash (Postfix's corrupt
// queue; the recovery steps of spec section 3.6): drafts in tmp/ were never acknowledged
// and are deleted, every message is fully validated and damaged ones go to corrupt/,
// state files without a message are removed. Bad files never make it throw or fail.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <vector>

#include "queue/format.hpp"
#include "queue/spool_core.hpp"
#include "support/log.hpp"

namespace tlsrelay::queue {

namespace {

using Notes = std::vector<std::string>;

std::error_code make_dir(const std::filesystem::path& path, bool& created) {
    if (::mkdir(path.c_str(), 0700) == 0) {
        created = true;
        return {};
    }
    if (errno != EEXIST) return io::errno_code();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return io::errno_code();
    return S_ISDIR(st.st_mode) ? std::error_code{} : std::make_error_code(std::errc::not_a_directory);
}

std::vector<std::string> names_in(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
        names.push_back(entry.path().filename().string());
    return names;
}

// A draft still being written holds LOCK_EX on its file (another process may be the
// daemon); anything unlocked is a leftover of a dead process.
void clean_tmp(const SpoolCore& core, Notes& notes) {
    for (const std::string& name : names_in(core.tmp)) {
        std::filesystem::path path = core.tmp / name;
        std::error_code ec;
        io::Fd fd = io::open_file(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, ec);
        if (!ec && io::lock(fd.get(), LOCK_EX | LOCK_NB)) continue;  // in use
        std::filesystem::remove_all(path, ec);
        std::string shown = "tmp/" + support::printable(name);
        notes.push_back(ec ? shown + ": cannot remove: " + ec.message()
                           : shown + ": removed unfinished message (never acknowledged)");
    }
}

// Why messages/<name> must not be delivered, or "" when it is valid.
format::Check check_message(const SpoolCore& core, const std::string& name) {
    if (!is_queue_id(name)) return {"not a queue id"};
    std::error_code ec;
    io::Fd fd = io::open_file(core.messages / name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, ec);
    if (ec == std::errc::no_such_file_or_directory) return {};  // removed meanwhile
    if (ec == std::errc::too_many_symbolic_link_levels) return {"not a regular file"};
    if (ec) return {"cannot open: " + ec.message(), true};
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return {"not a regular file"};
    Envelope e;
    format::Check c = format::read_message(fd.get(), e, nullptr);
    if (c.ok() && e.id != name) c.why = "id record does not match the file name";
    return c;
}

void check_messages(const SpoolCore& core, Notes& notes) {
    for (const std::string& name : names_in(core.messages)) {
        format::Check c = check_message(core, name);
        if (c.ok()) continue;
        if (c.io_error)  // maybe transient: leave it, list() and content() skip it
            notes.push_back(support::printable(name) + ": left in place: " + c.why);
        else
            notes.push_back(move_to_corrupt(core, name, c.why));
    }
}

// state/<ID> without messages/<ID>, stale state/<ID>.tmp, and anything else.
void clean_state(const SpoolCore& core, Notes& notes) {
    bool removed = false;
    for (const std::string& name : names_in(core.state)) {
        bool tmp = name.size() > 4 && name.ends_with(".tmp");
        std::string id = tmp ? name.substr(0, name.size() - 4) : name;
        std::error_code ec;
        io::Fd message = io::open_file(core.messages / id, O_RDONLY | O_NOFOLLOW, ec);
        if (is_queue_id(id) && !ec && !tmp) continue;
        // A state temp file is live while its message is locked by a writer.
        if (!ec && io::lock(message.get(), LOCK_EX | LOCK_NB)) continue;
        if (io::unlink(core.state / name)) continue;
        removed = true;
        notes.push_back("state/" + support::printable(name) +
                        (tmp ? ": removed unfinished state file" : ": removed orphan state file"));
    }
    if (removed) io::sync(core.ops, core.state_fd.get());
}

// Files in free/ are spent messages kept for their inodes; beyond the limit they go.
void collect_free(SpoolCore& core) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(core.free, ec)) {
        std::string name = entry.path().filename().string();
        if (core.free_files.size() < FreeFiles::limit && entry.is_regular_file(ec))
            core.free_files.add(name);
        else
            io::unlink(entry.path());
    }
}

std::string open_layout(SpoolCore& core) {
    bool created = false;
    for (const auto* dir : {&core.dir, &core.tmp, &core.messages, &core.state, &core.corrupt, &core.free}) {
        if (auto ec = make_dir(*dir, created)) return dir->string() + ": " + ec.message();
    }
    std::error_code ec;
    core.messages_fd = io::open_dir(core.messages, ec);
    if (!ec) core.state_fd = io::open_dir(core.state, ec);
    if (!ec) core.corrupt_fd = io::open_dir(core.corrupt, ec);
    if (!ec && created) {  // make the new directories themselves durable
        io::Fd top = io::open_dir(core.dir, ec);
        if (!ec) ec = io::sync(core.ops, top.get());
    }
    return ec ? core.dir.string() + ": " + ec.message() : "";
}

}  // namespace

OpenResult open_spool(const std::filesystem::path& dir, const FileOps& ops) {
    OpenResult result;
    auto core = std::make_shared<SpoolCore>();
    core->dir = dir;
    core->tmp = dir / "tmp";
    core->messages = dir / "messages";
    core->state = dir / "state";
    core->corrupt = dir / "corrupt";
    core->free = dir / "free";
    core->ops = ops;
    result.error = open_layout(*core);
    if (!result.error.empty()) return result;
    clean_tmp(*core, result.notes);
    check_messages(*core, result.notes);
    clean_state(*core, result.notes);
    collect_free(*core);
    core->anonymous_drafts = can_link_anonymous(*core);
    result.spool = make_fs_spool(std::move(core));
    return result;
}

OpenResult open_spool(const std::filesystem::path& dir) {
    return open_spool(dir, system_file_ops());
}

}  // namespace tlsrelay::queue
