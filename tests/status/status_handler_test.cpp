#include "status/status_handler.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <vector>

#include "status/allow_list.hpp"
#include "status/status_report.hpp"

namespace trident::status {
namespace {

AllowList allow(std::vector<std::string> entries) {
    auto list = AllowList::parse(entries);
    EXPECT_TRUE(list) << list.error().message;
    return list ? std::move(list.value()) : AllowList{};
}

TEST(AllowList, MatchesCidrBlocksOfBothFamilies) {
    const AllowList list = allow({"127.0.0.0/8", "::1", "10.1.0.0/17", "2001:db8::/33"});
    EXPECT_TRUE(list.permits("127.0.0.1"));
    EXPECT_TRUE(list.permits("127.255.1.2"));
    EXPECT_TRUE(list.permits("::1"));
    EXPECT_TRUE(list.permits("::ffff:127.0.0.1"));  // a dual-stack listener's view of v4
    EXPECT_TRUE(list.permits("10.1.127.255"));
    EXPECT_FALSE(list.permits("10.1.128.0"));
    EXPECT_TRUE(list.permits("2001:db8:7fff::1"));
    EXPECT_FALSE(list.permits("2001:db8:8000::1"));
    EXPECT_FALSE(list.permits("128.0.0.1"));
    EXPECT_FALSE(list.permits("::2"));
    EXPECT_FALSE(list.permits(""));
    EXPECT_FALSE(list.permits("localhost"));
}

TEST(AllowList, EmptyListAndZeroPrefix) {
    EXPECT_FALSE(allow({}).permits("127.0.0.1"));
    EXPECT_TRUE(allow({"0.0.0.0/0"}).permits("203.0.113.9"));
    EXPECT_FALSE(allow({"0.0.0.0/0"}).permits("::1"));
}

TEST(AllowList, BadEntriesAreErrors) {
    EXPECT_FALSE(AllowList::parse({"localhost"}));
    EXPECT_FALSE(AllowList::parse({"127.0.0.1/33"}));
    EXPECT_FALSE(AllowList::parse({"::1/129"}));
    EXPECT_FALSE(AllowList::parse({"10.0.0.0/x"}));
}

TEST(StatusReport, UptimeReadsAsApachesShowTime) {
    EXPECT_EQ(uptime_text(0), "");
    EXPECT_EQ(uptime_text(1), " 1 second");
    EXPECT_EQ(uptime_text(3661), " 1 hour 1 minute 1 second");
    EXPECT_EQ(uptime_text(2 * 86400 + 120), " 2 days 2 minutes");
}

TEST(StatusReport, RatesArePrintedAsModStatusDoes) {
    StatusReport report;
    report.server_name = "host";
    report.now = std::chrono::system_clock::now();
    report.restart_time = report.now - std::chrono::seconds(4);
    report.accesses = 1;
    report.bytes = 4096;
    report.duration_ms = 3;
    const std::string text = render_auto(report);
    // %g of a float, without the zero before the point, as APR prints it.
    EXPECT_NE(text.find("\nReqPerSec: .25\nBytesPerSec: 1024\nBytesPerReq: 4096\n"
                        "DurationPerReq: 3\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("\nServerUptimeSeconds: 4\nServerUptime: 4 seconds\n"), std::string::npos)
        << text;
    // JSON wants the zero: a number may not begin with the point (RFC 8259 §6).
    report.cpu_user = 0.03;
    const std::string json = render_json(report);
    EXPECT_NE(json.find("\"ReqPerSec\": 0.25,\n"), std::string::npos) << json;
    EXPECT_NE(json.find("\"CPUUser\": 0.03,\n"), std::string::npos) << json;
    EXPECT_EQ(json.find(": ."), std::string::npos) << json;
    // An asynchronous MPM's page adds the process and connection counts, as mod_status's.
    EXPECT_EQ(text.find("\nProcesses: "), std::string::npos) << text;
    report.mpm = "event";
    EXPECT_NE(render_auto(report).find("\nIdleWorkers: 0\nProcesses: 0\nStopping: 0\n"
                                       "ConnsTotal: 0\nConnsAsyncWaitIO: 0\n"),
              std::string::npos)
        << render_auto(report);
}

/// The keys of an `?auto` page, in order.
std::vector<std::string> keys_of(const std::string& text) {
    std::vector<std::string> keys;
    std::istringstream lines(text);
    std::string line;
    std::getline(lines, line);  // the server name
    while (std::getline(lines, line)) {
        keys.push_back(line.substr(0, line.find(':')));
    }
    return keys;
}

class StatusHandlerTest : public ::testing::Test {
protected:
    void SetUp() override {
        auto board = Scoreboard::create(2, 2, "worker");
        ASSERT_TRUE(board) << board.error().message;
        board_.emplace(std::move(board.value()));
        board_->set_generation(1);
        board_->process(0).occupy(::getpid(), 1);
        ASSERT_EQ(board_->prepare_process(0, 2), 0);
        board_->worker(0, 0).set_state(WorkerState::writing);
        board_->worker(0, 0).set_text("127.0.0.1", "GET /x HTTP/1.1");
        board_->worker(0, 1).set_state(WorkerState::waiting);
        board_->worker(0, 1).count_request(3072, std::chrono::system_clock::now(),
                                           std::chrono::milliseconds(40));
        handler_ =
            std::make_unique<StatusHandler>(*board_, allow({"127.0.0.0/8"}), "Trident/9", "worker");
        request_.method = http::Method::get;
        request_.host = "status.test:8080";
        request_.client_address = "127.0.0.1";
    }
    http::Response handle(std::string_view query) {
        request_.query = query;
        http::Response response;
        handler_->handle(request_, response);
        return response;
    }
    static std::string header(const http::Response& response, std::string_view name) {
        for (const auto& [field, value] : response.headers) {
            if (http::iequals(field, name)) {
                return value;
            }
        }
        return {};
    }
    static std::string body(const http::Response& response) {
        const auto* text = std::get_if<std::string>(&response.body);
        return text != nullptr ? *text : std::string();
    }

    std::optional<Scoreboard> board_;
    std::unique_ptr<StatusHandler> handler_;
    http::Request request_;
};

TEST_F(StatusHandlerTest, AutoHasModStatusKeysInOrder) {
    const http::Response response = handle("auto");
    EXPECT_EQ(response.status, http::Status::ok);
    EXPECT_EQ(header(response, "Content-Type"), "text/plain; charset=ISO-8859-1");
    EXPECT_EQ(header(response, "Cache-Control"), "no-cache");
    const std::string text = body(response);
    EXPECT_TRUE(text.starts_with("status.test\nServerVersion: Trident/9\nServerMPM: worker\n"))
        << text;
    std::vector<std::string> expected = {"ServerVersion",
                                         "ServerMPM",
                                         "Server Built",
                                         "CurrentTime",
                                         "RestartTime",
                                         "ParentServerConfigGeneration",
                                         "ParentServerMPMGeneration",
                                         "ServerUptimeSeconds",
                                         "ServerUptime",
                                         "Load1",
                                         "Load5",
                                         "Load15",
                                         "Total Accesses",
                                         "Total kBytes",
                                         "Total Duration",
                                         "CPUUser",
                                         "CPUSystem",
                                         "CPUChildrenUser",
                                         "CPUChildrenSystem"};
    std::vector<std::string> keys = keys_of(text);
    // CPULoad, ReqPerSec and BytesPerSec come and go with CPU time and uptime, as in Apache.
    std::erase_if(keys, [](const std::string& key) {
        return key == "CPULoad" || key == "ReqPerSec" || key == "BytesPerSec";
    });
    // The worker MPM is not asynchronous: no Processes, Stopping or Conns* (mod_status
    // prints them for event only).
    for (const char* key : {"Uptime", "BytesPerReq", "DurationPerReq", "BusyWorkers",
                            "GracefulWorkers", "IdleWorkers", "Scoreboard"}) {
        expected.push_back(key);
    }
    EXPECT_EQ(keys, expected) << text;
    EXPECT_NE(text.find("\nTotal Accesses: 1\nTotal kBytes: 3\nTotal Duration: 40\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("\nBytesPerReq: 3072\nDurationPerReq: 40\nBusyWorkers: 1\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("\nIdleWorkers: 1\nScoreboard: "), std::string::npos) << text;
    EXPECT_TRUE(text.ends_with("\nScoreboard: W_..\n")) << text;
}

TEST_F(StatusHandlerTest, JsonCarriesTheSameData) {
    const http::Response response = handle("json");
    EXPECT_EQ(header(response, "Content-Type"), "application/json");
    const std::string text = body(response);
    EXPECT_NE(text.find("\"Total Accesses\": 1,"), std::string::npos) << text;
    EXPECT_NE(text.find("\"Scoreboard\": \"W_..\""), std::string::npos) << text;
    EXPECT_NE(text.find("\"Request\": \"GET /x HTTP/1.1\""), std::string::npos) << text;
}

TEST_F(StatusHandlerTest, HtmlShowsWorkersAndRefreshIsHonoured) {
    const http::Response response = handle("refresh=5");
    EXPECT_EQ(header(response, "Refresh"), "5");
    EXPECT_TRUE(header(response, "Content-Type").starts_with("text/html"));
    const std::string text = body(response);
    EXPECT_NE(text.find("Server Version: Trident/9"), std::string::npos);
    EXPECT_NE(text.find("<td nowrap>GET /x HTTP/1.1</td>"), std::string::npos) << text;
    EXPECT_NE(text.find("Keepalive (read)"), std::string::npos);
    EXPECT_EQ(header(handle("auto&refresh=0"), "Refresh"), "1");
}

TEST_F(StatusHandlerTest, OtherClientsAreForbidden) {
    request_.client_address = "192.0.2.1";
    EXPECT_EQ(handle("auto").status, http::Status::forbidden);
    request_.client_address = "";
    EXPECT_EQ(handle("").status, http::Status::forbidden);
}

TEST_F(StatusHandlerTest, OnlyGetAndHead) {
    request_.method = http::Method::post;
    const http::Response response = handle("");
    EXPECT_EQ(response.status, http::Status::method_not_allowed);
    EXPECT_EQ(header(response, "Allow"), "GET, HEAD");
}

}  // namespace
}  // namespace trident::status
