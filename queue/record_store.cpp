#include "queue/record_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "queue/io.hpp"

namespace tlsrelay::queue {
namespace {

constexpr std::string_view temp_prefix = ".tmp-";

}  // namespace

RecordStore::RecordStore(const std::filesystem::path& spool_dir, const std::string& folder)
    : dir_(spool_dir / folder) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec))
        if (entry.path().filename().string().starts_with(temp_prefix)) io::unlink(entry.path());
}

bool RecordStore::valid_key(std::string_view key) {
    if (key.empty() || key.size() > 253 || key.front() == '.') return false;
    return std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
    });
}

std::optional<std::string> RecordStore::read(std::string_view key) const {
    if (!valid_key(key)) return std::nullopt;
    std::error_code ec;
    auto size = std::filesystem::file_size(dir_ / key, ec);
    if (ec || size > max_record_bytes) return std::nullopt;
    std::string bytes;
    if (io::read_file(dir_ / key, bytes)) return std::nullopt;
    return bytes;
}

std::error_code RecordStore::write(std::string_view key, std::string_view bytes) {
    if (!valid_key(key)) return std::make_error_code(std::errc::invalid_argument);
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) return ec;
    static std::atomic<unsigned> counter{0};
    const auto temp = dir_ / (std::string(temp_prefix) + std::to_string(::getpid()) + "-" +
                              std::to_string(counter++) + "-" + std::string(key));
    const FileOps ops = system_file_ops();
    io::Fd fd = io::open_file(temp, O_WRONLY | O_CREAT | O_EXCL, ec, 0644);
    if (ec) return ec;
    if (!(ec = io::write_all(ops, fd.get(), bytes)) && !(ec = io::sync(ops, fd.get())) &&
        !(ec = io::close_checked(ops, fd)) && !(ec = io::rename(ops, temp, dir_ / key, false))) {
        io::Fd dir = io::open_dir(dir_, ec);
        if (!ec) ec = io::sync(ops, dir.get());
        return ec;
    }
    io::unlink(temp);
    return ec;
}

std::error_code RecordStore::remove(std::string_view key) {
    if (!valid_key(key)) return std::make_error_code(std::errc::invalid_argument);
    if (::unlink((dir_ / key).c_str()) != 0)
        return errno == ENOENT ? std::error_code{} : std::error_code(errno, std::generic_category());
    std::error_code ec;
    io::Fd dir = io::open_dir(dir_, ec);
    if (!ec) ec = io::sync(system_file_ops(), dir.get());
    return ec;
}

std::vector<std::string> RecordStore::keys() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
        std::string name = entry.path().filename().string();
        if (valid_key(name) && entry.is_regular_file(ec)) out.push_back(std::move(name));
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace tlsrelay::queue
