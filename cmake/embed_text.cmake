# Writes OUT, a C++ file defining `std::string_view NAME()` in NAMESPACE that
# returns the text of FILE, so the binary carries it (a script it installs).
# Run at build time.
file(READ "${FILE}" text)
string(FIND "${text}" ")secbox_text\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${FILE} contains the raw-string delimiter")
endif()
file(WRITE "${OUT}.new" "// Generated from ${FILE} by cmake/embed_text.cmake.
#include <string_view>

namespace ${NAMESPACE} {

std::string_view ${NAME}() {
  return R\"secbox_text(${text})secbox_text\";
}

}  // namespace ${NAMESPACE}
")
file(COPY_FILE "${OUT}.new" "${OUT}" ONLY_IF_DIFFERENT)
