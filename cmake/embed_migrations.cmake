# Writes OUT, a C++ file holding every migration in FILES as a raw string, so
# the binary carries exactly the schema it speaks. Run at build time.
set(body "")
foreach(file IN LISTS FILES)
  get_filename_component(name "${file}" NAME)
  if(NOT name MATCHES "^([0-9][0-9][0-9][0-9])_([a-z0-9_]+)\\.sql$")
    message(FATAL_ERROR "migration file name must be NNNN_name.sql: ${name}")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")
  set(label "${CMAKE_MATCH_2}")
  file(READ "${file}" sql)
  string(FIND "${sql}" ")secbox_sql\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${name} contains the raw-string delimiter")
  endif()
  string(APPEND body "    {${version}, \"${label}\", R\"secbox_sql(${sql})secbox_sql\"},\n")
endforeach()
file(WRITE "${OUT}.new" "// Generated from migrations/*.sql by cmake/embed_migrations.cmake.
#include \"replica/migrations.hpp\"

namespace secbox::replica {

const std::vector<Migration>& builtin_migrations() {
  static const std::vector<Migration> kMigrations = {
${body}  };
  return kMigrations;
}

}  // namespace secbox::replica
")
file(COPY_FILE "${OUT}.new" "${OUT}" ONLY_IF_DIFFERENT)
