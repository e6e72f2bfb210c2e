// Small records the relay keeps in a folder of the spool beside the queue, one file
// per key, e.g. the MTA-STS policy cache in <queue.dir>/mta-sts/<domain> and the TLS-RPT
// counts in <queue.dir>/tls-rpt/. Each write
// replaces the record atomically with the queue's commit rule: temp file, fsync,
// rename over the old one, fsync of the folder; a reader sees the old or the new
// record, never a mix. The bytes are the caller's (sts/cache.hpp for MTA-STS).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tlsrelay::queue {

class RecordStore {
  public:
    // folder: a subfolder of the spool, created on the first write. Temp files a crash
    // left behind are removed here.
    RecordStore(const std::filesystem::path& spool_dir, const std::string& folder);

    // Keys are lower-case DNS names: letters, digits, '-', '.', '_', at most 253
    // characters, not starting with '.'; others are refused (no path tricks).
    static bool valid_key(std::string_view key);

    // nullopt when absent, unreadable, larger than max_record_bytes or the key is invalid.
    std::optional<std::string> read(std::string_view key) const;
    // Blocking (fsync): call it off the network thread.
    std::error_code write(std::string_view key, std::string_view bytes);

    // Blocking (unlink, fsync of the folder). Removing an absent record is no error.
    std::error_code remove(std::string_view key);
    // The valid keys present, sorted; temp files and other names are left out.
    std::vector<std::string> keys() const;

    static constexpr std::size_t max_record_bytes = 256 * 1024;
    const std::filesystem::path& dir() const { return dir_; }

  private:
    std::filesystem::path dir_;
};

}  // namespace tlsrelay::queue
