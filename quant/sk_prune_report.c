/* skiff-prune's report: JSON for machines, and a self-contained HTML page
 * with the head scores as a layer x head heat map. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sk_atomic.h"
#include "sk_prune.h"

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}

static sk_status finish(sk_atomic_file *af, const char *path, sk_error *err)
{
    if (ferror(af->f)) {
        sk_atomic_abort(af);
        return sk_error_set(err, SK_EIO, "%s: write failed", path);
    }
    return sk_atomic_commit(af, 0, err);
}

sk_status sk_prune_report_write_json(const sk_prune_report *r, const char *model, const char *path, sk_error *err)
{
    sk_atomic_file af;
    sk_status s = sk_atomic_open(&af, path, 0644, err);
    if (s) return s;
    FILE *f = af.f;
    fputs("{\n  \"model\": ", f);
    json_str(f, model);
    fputs(",\n  \"score\": ", f);
    json_str(f, r->score);
    fputs(",\n  \"metric\": ", f);
    json_str(f, r->metric);
    fputs(",\n  \"compensate\": ", f);
    json_str(f, r->compensate);
    if (r->auto_div_bias >= 0) {
        fputs(",\n  \"auto_divergence\": {\"bias\": ", f);
        json_num(f, r->auto_div_bias);
        fputs(", \"lsq\": ", f);
        json_num(f, r->auto_div_lsq);
        fputc('}', f);
    }
    fprintf(f, ",\n  \"samples\": %zu,\n  \"heads_total\": %" PRId64 ",\n  \"heads_removed\": %" PRId64
               ",\n  \"head_params_before\": %" PRId64 ",\n  \"head_params_after\": %" PRId64
               ",\n  \"params_before\": %" PRIu64 ",\n  \"params_after\": %" PRIu64 ",\n  \"file_bytes_before\": %" PRIu64
               ",\n  \"file_bytes_after\": %" PRIu64 ",\n  \"seconds\": {\"score\": %.3f, \"compensate\": %.3f, \"rewrite\": %.3f}"
               ",\n  \"check_rel_err\": ",
            r->samples, r->heads_total, r->heads_removed, r->head_params_before, r->head_params_after, r->params_before,
            r->params_after, r->file_bytes_before, r->file_bytes_after, r->score_seconds, r->comp_seconds,
            r->rewrite_seconds);
    if (r->check_rel_err >= 0) json_num(f, r->check_rel_err);
    else fputs("null", f);
    fputs(",\n  \"layers\": [", f);
    for (size_t i = 0; i < r->n_blocks; i++) {
        const sk_prune_block_report *b = &r->blocks[i];
        fprintf(f, "%s\n    {\"layer\": %" PRId64 ", \"core\": ", i ? "," : "", b->layer);
        json_str(f, b->core);
        fputs(", \"kind\": ", f);
        json_str(f, b->kind);
        fprintf(f, ", \"heads\": %" PRId64 ", \"kv_heads\": %" PRId64 ", \"head_size\": %" PRId64 ", \"kept\": %" PRId64
                   ", \"kv_kept\": %" PRId64 ", \"bias_added\": %s,\n     \"scores\": [",
                b->heads, b->kv_heads, b->head_size, b->kept, b->kv_kept, b->bias_added ? "true" : "false");
        for (int64_t h = 0; h < b->heads; h++) {
            if (h) fputs(", ", f);
            json_num(f, b->scores[h]);
        }
        fputs("],\n     \"pruned\": [", f);
        for (int64_t h = 0; h < b->heads; h++) fprintf(f, h ? ", %d" : "%d", b->pruned[h]);
        fputs("], \"alpha\": ", f);
        if (b->alpha) {
            fputc('[', f);
            for (int64_t h = 0; h < b->heads; h++) {
                if (h) fputs(", ", f);
                json_num(f, b->alpha[h]);
            }
            fputc(']', f);
        } else {
            fputs("null", f);
        }
        fputc('}', f);
    }
    fputs("\n  ]\n}\n", f);
    return finish(&af, path, err);
}

static void html_text(FILE *f, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '<') fputs("&lt;", f);
        else if (*p == '>') fputs("&gt;", f);
        else if (*p == '&') fputs("&amp;", f);
        else if (*p == '"') fputs("&quot;", f);
        else fputc(*p, f);
    }
}

sk_status sk_prune_report_write_html(const sk_prune_report *r, const char *model, const char *path, sk_error *err)
{
    sk_atomic_file af;
    sk_status s = sk_atomic_open(&af, path, 0644, err);
    if (s) return s;
    FILE *f = af.f;
    int64_t maxh = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < r->n_blocks; i++) {
        if (r->blocks[i].heads > maxh) maxh = r->blocks[i].heads;
        for (int64_t h = 0; h < r->blocks[i].heads; h++) {
            double v = r->blocks[i].scores[h];
            if (!isfinite(v) || v <= 0) continue;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
    }
    int have_scores = isfinite(lo) && isfinite(hi);
    fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>skiff-prune: ", f);
    html_text(f, model);
    fputs("</title>\n<style>\n"
          "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\n"
          "table{border-collapse:collapse;margin:1em 0}\n"
          "td,th{padding:4px 8px;text-align:right}\n"
          ".sum td{text-align:left}\n.sum td:first-child{color:#555}\n"
          ".map td{width:64px;height:36px;text-align:center;font-size:12px;border:1px solid #fff}\n"
          ".map td.cut{outline:2px dashed #222;outline-offset:-4px;color:#000;font-weight:bold}\n"
          ".map th{font-weight:normal;color:#555}\n"
          "small{color:#666}\n"
          "</style></head><body>\n<h1>Head pruning</h1>\n<p><code>", f);
    html_text(f, model);
    fputs("</code></p>\n<table class=\"sum\">\n", f);
    fprintf(f, "<tr><td>heads removed</td><td>%" PRId64 " of %" PRId64 "</td></tr>\n", r->heads_removed, r->heads_total);
    fputs("<tr><td>score</td><td>", f);
    html_text(f, r->score);
    if (r->metric[0]) {
        fputs(" &mdash; ", f);
        html_text(f, r->metric);
    }
    fprintf(f, "</td></tr>\n<tr><td>calibration samples</td><td>%zu</td></tr>\n", r->samples);
    fputs("<tr><td>compensation</td><td>", f);
    html_text(f, r->compensate);
    if (r->auto_div_bias >= 0)
        fprintf(f, " (output change on the samples: bias %.3g, lsq %.3g)", r->auto_div_bias, r->auto_div_lsq);
    fprintf(f, "</td></tr>\n<tr><td>attention parameters</td><td>%" PRId64 " &rarr; %" PRId64 "</td></tr>\n",
            r->head_params_before, r->head_params_after);
    if (r->params_before)
        fprintf(f, "<tr><td>model parameters</td><td>%" PRIu64 " &rarr; %" PRIu64 " (%.1f%%)</td></tr>\n", r->params_before,
                r->params_after, 100.0 * ((double)r->params_after - (double)r->params_before) / (double)r->params_before);
    if (r->file_bytes_before)
        fprintf(f, "<tr><td>file bytes</td><td>%" PRIu64 " &rarr; %" PRIu64 "</td></tr>\n", r->file_bytes_before,
                r->file_bytes_after);
    fprintf(f, "<tr><td>time</td><td>scoring %.2f s, compensation %.2f s, rewrite %.2f s</td></tr>\n", r->score_seconds,
            r->comp_seconds, r->rewrite_seconds);
    if (r->check_rel_err >= 0)
        fprintf(f, "<tr><td>check vs. simulated pruning</td><td>relative error %.2g</td></tr>\n", r->check_rel_err);
    fputs("</table>\n<h2>Scores (layer &times; head)</h2>\n<p><small>Darker: more important. Dashed: removed. ", f);
    fputs(have_scores ? "Colour on a log scale between the smallest and largest score.</small></p>\n"
                      : "No scores (heads were given).</small></p>\n", f);
    fputs("<table class=\"map\">\n<tr><th></th>", f);
    for (int64_t h = 0; h < maxh; h++) fprintf(f, "<th>head %" PRId64 "</th>", h);
    fputs("</tr>\n", f);
    for (size_t i = 0; i < r->n_blocks; i++) {
        const sk_prune_block_report *b = &r->blocks[i];
        fputs("<tr><th title=\"", f);
        html_text(f, b->core);
        fprintf(f, "\">layer %" PRId64 "</th>", b->layer);
        for (int64_t h = 0; h < maxh; h++) {
            if (h >= b->heads) {
                fputs("<td></td>", f);
                continue;
            }
            double v = b->scores[h], t = 0;
            if (have_scores && isfinite(v) && v > 0 && hi > lo) t = (log(v) - log(lo)) / (log(hi) - log(lo));
            else if (have_scores && isfinite(v) && v > 0) t = 1;
            int red = (int)(255 - 75 * t), green = (int)(245 - 190 * t), blue = (int)(220 - 190 * t);
            fprintf(f, "<td%s style=\"background:rgb(%d,%d,%d);color:%s\">", b->pruned[h] ? " class=\"cut\"" : "", red, green,
                    blue, t > 0.6 ? "#fff" : "#000");
            if (isfinite(v)) fprintf(f, "%.3g", v);
            else fputs(b->pruned[h] ? "&times;" : "", f);
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n</body></html>\n", f);
    return finish(&af, path, err);
}
