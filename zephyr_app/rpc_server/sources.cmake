# The portable RPC server's sources, in one place: included by the plain CMake library below and
# by the Zephyr build (zephyr_library_sources(${RPC_SERVER_SOURCES})).
set(RPC_SERVER_DIR ${CMAKE_CURRENT_LIST_DIR})
set(RPC_SERVER_INCLUDE_DIR ${RPC_SERVER_DIR}/include)
set(RPC_SERVER_SOURCES
  ${RPC_SERVER_DIR}/src/crc16.c
  ${RPC_SERVER_DIR}/src/framing.c
  ${RPC_SERVER_DIR}/src/session.c
  ${RPC_SERVER_DIR}/src/rpc.c
  ${RPC_SERVER_DIR}/src/builtins.c
  ${RPC_SERVER_DIR}/src/server.c
)
