/* The shared library's code is the static libraries' objects (linked whole, see
 * python/CMakeLists.txt); this translation unit only gives the target a source. */
typedef int gdn_shared_library_has_no_code_of_its_own;
