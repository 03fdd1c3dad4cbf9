#pragma once

// Finds and loads MPM modules, refusing any whose ABI or build does not match this binary.

#include <filesystem>
#include <string>
#include <vector>

#include "trident/mpm.hpp"

namespace trident {

/// A loaded module; the shared object stays mapped until this is destroyed.
class MpmModule {
public:
    MpmModule(MpmModule&& other) noexcept;
    MpmModule& operator=(MpmModule&&) = delete;
    MpmModule(const MpmModule&) = delete;
    ~MpmModule();

    const TridentMpmModule& descriptor() const noexcept { return *descriptor_; }
    const std::filesystem::path& path() const noexcept { return path_; }

    /// Loads `dir`/mpm_<name>.so and checks it before calling anything else in it.
    static Result<MpmModule> load(const std::filesystem::path& dir, const std::string& name);

private:
    MpmModule(void* handle, const TridentMpmModule* descriptor, std::filesystem::path path)
        : handle_(handle), descriptor_(descriptor), path_(std::move(path)) {}

    void* handle_ = nullptr;
    const TridentMpmModule* descriptor_ = nullptr;
    std::filesystem::path path_;
};

/// Where modules are looked for when the config sets no module_dir: beside the executable
/// in a build tree, else the installed <prefix>/lib/trident.
std::filesystem::path default_module_dir();

/// The MPM names with a module file in `dir` ("prefork" for mpm_prefork.so), sorted.
std::vector<std::string> find_mpm_modules(const std::filesystem::path& dir);

}  // namespace trident
