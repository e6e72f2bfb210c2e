// Runs blocking work (file creation, fsync, rename) on a thread pool and resumes the
// calling coroutine on its own executor, so the network thread never waits for the
// disk. Note: `co_await post(pool, use_awaitable)` would NOT move the coroutine (its
// completion runs on the coroutine's executor); bind_executor is what moves it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <optional>
#include <type_traits>

namespace tlsrelay::support {

template <class F>
boost::asio::awaitable<std::invoke_result_t<F>> on_pool(boost::asio::thread_pool& pool, F f) {
    namespace asio = boost::asio;
    using R = std::invoke_result_t<F>;
    auto home = co_await asio::this_coro::executor;
    co_await asio::post(asio::bind_executor(pool, asio::use_awaitable));
    std::exception_ptr error;
    std::optional<R> result;
    try {
        result.emplace(f());
    } catch (...) {
        error = std::current_exception();
    }
    co_await asio::post(asio::bind_executor(home, asio::use_awaitable));
    if (error) std::rethrow_exception(error);
    co_return std::move(*result);
}

}  // namespace tlsrelay::support
