/* The DICOM export of one stored result (export.h, agora__export_result): the one way
 * `agora results export --format seg|sr|dicom` and the clinic daemon (`agora serve`, its
 * outbox) turn a result into SEG and SR objects. */
#include <stdio.h>
#include <string.h>

#include "export.h"
#include "home.h"

/* The plugin's vendor from its installed manifest (HOME/plugins/<id>/manifest.json, checked at
 * install), when the installed version is the result's; "" otherwise. */
static void plugin_vendor(const char *home, const json_t *result, char *out, size_t size)
{
    out[0] = '\0';
    const json_t *p = json_object_get(result, "plugin");
    const char *id = json_string_value(json_object_get(p, "id"));
    char path[4096];
    if (id == NULL || agora__home_entry_path(home, AGORA__HOME_PLUGINS, id, "manifest.json", path,
                                             sizeof path, NULL) != 0)
        return;
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    const char *v = json_string_value(json_object_get(m, "vendor"));
    const char *ver = json_string_value(json_object_get(m, "version"));
    const char *want = json_string_value(json_object_get(p, "version"));
    if (v && ver && want && strcmp(ver, want) == 0)
        snprintf(out, size, "%s", v);
    json_decref(m);
}

int agora__export_result(agora__ingest *ing, const char *home, const char *study_uid,
                         const json_t *result, const agora__export_result_opts *o, const char *dir,
                         agora__export_written_fn written, void *arg, agora__error *err)
{
    const char *inv = json_string_value(json_object_get(result, "invocation_id"));
    if (inv == NULL)
        inv = "?";
    agora__export_source src;
    if (agora__export_source_load(ing, o->sources, o->n_sources, study_uid,
                                  json_string_value(json_object_get(result, "series_uid")), &src,
                                  err) != 0)
        return agora__error_prefix(err, "invocation %s", inv);
    char vendor[256], path[4096];
    plugin_vendor(home, result, vendor, sizeof vendor);
    agora__export_uidmap uids;
    int rc = agora__export_uidmap_build(&src, o->view_key, &uids, err);
    if (rc != 0) {
        agora__export_source_free(&src);
        return rc;
    }
    agora__export_ctx ctx = {.src = &src, .uid_root = o->uid_root, .vendor = vendor, .uids = &uids};
    int seg_written = 0;
    if (o->want_seg) {
        rc = agora__export_seg(&ctx, home, result, dir, &seg_written, path, sizeof path, err);
        if (rc != 0)
            agora__error_prefix(err, "invocation %s", inv);
        else if (seg_written && written != NULL)
            written(arg, path);
    }
    /* Every ok result gets an SR (findings, measurements and the summary need no mask); its
     * volumetric groups point at the SEG above by its deterministic UID. */
    if (rc == 0 && o->want_sr) {
        rc = agora__export_sr(&ctx, home, result, dir, path, sizeof path, err);
        if (rc != 0)
            agora__error_prefix(err, "invocation %s", inv);
        else if (written != NULL)
            written(arg, path);
    }
    agora__export_uidmap_free(&uids);
    agora__export_source_free(&src);
    return rc;
}
