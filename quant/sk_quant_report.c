/* The quantization report: JSON for machines, one self-contained HTML page
 * (inline CSS and SVG, no script, no external resource) for people. */
#include "sk_quant_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_atomic.h"

/* ---- JSON -------------------------------------------------------------------------- */

static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* A number, or null when it is not finite (JSON has no inf/nan). */
static void jnum(FILE *f, double v, char conv, int prec)
{
    if (!isfinite(v)) fputs("null", f);
    else if (conv == 'g') fprintf(f, "%.*g", prec, v);
    else fprintf(f, "%.*f", prec, v);
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0;
}

static void write_json(FILE *f, const sk_quant_report *r)
{
    fprintf(f, "{\n  \"mode\": ");
    jstr(f, r->mode);
    fprintf(f, ",\n  \"seconds\": ");
    jnum(f, r->seconds, 'f', 3);
    fprintf(f, ",\n  \"file_bytes_before\": %llu,\n  \"file_bytes_after\": %llu,\n  \"file_ratio\": ",
            (unsigned long long)r->file_bytes_before, (unsigned long long)r->file_bytes_after);
    jnum(f, ratio(r->file_bytes_after, r->file_bytes_before), 'f', 4);
    fprintf(f, ",\n  \"weight_bytes_before\": %llu,\n  \"weight_bytes_after\": %llu,\n  \"layers\": [",
            (unsigned long long)r->weight_bytes_before, (unsigned long long)r->weight_bytes_after);
    for (size_t i = 0; i < r->n_layers; i++) {
        const sk_quant_layer *l = &r->layers[i];
        fprintf(f, "%s\n    {\"node\": ", i ? "," : "");
        jstr(f, l->node);
        fprintf(f, ", \"op\": ");
        jstr(f, l->op);
        fprintf(f, ", \"weight\": ");
        jstr(f, l->weight);
        fprintf(f, ", \"shape\": [%lld, %lld], \"scheme\": ", (long long)l->rows, (long long)l->cols);
        jstr(f, l->scheme);
        fprintf(f, ", \"sqnr_db\": ");
        jnum(f, l->sqnr_db, 'f', 2);
        fprintf(f, ", \"bytes_before\": %llu, \"bytes_after\": %llu, \"output\": ", (unsigned long long)l->bytes_before,
                (unsigned long long)l->bytes_after);
        jstr(f, l->output);
        fputs(", \"output_sqnr_db\": ", f);
        jnum(f, l->out_sqnr_db, 'f', 2);
        fputc('}', f);
    }
    fprintf(f, "%s],\n  \"skipped\": [", r->n_layers ? "\n  " : "");
    for (size_t i = 0; i < r->n_skipped; i++) {
        fprintf(f, "%s\n    {\"node\": ", i ? "," : "");
        jstr(f, r->skipped[i].node);
        fprintf(f, ", \"reason\": ");
        jstr(f, r->skipped[i].reason);
        fputc('}', f);
    }
    fprintf(f, "%s]", r->n_skipped ? "\n  " : "");
    if (r->calib_samples) {
        fprintf(f, ",\n  \"calibration\": {\"samples\": %zu, \"calibrator\": ", r->calib_samples);
        jstr(f, r->calibrator);
        fputc('}', f);
    }
    if (r->n_acts) {
        fprintf(f, ",\n  \"activations\": [");
        for (size_t i = 0; i < r->n_acts; i++) {
            const sk_quant_act *a = &r->acts[i];
            fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
            jstr(f, a->name);
            fprintf(f, ", \"quantized\": %s, \"range\": [", a->kept_float ? "false" : "true");
            jnum(f, a->lo, 'g', 6);
            fputs(", ", f);
            jnum(f, a->hi, 'g', 6);
            fputs("], \"seen\": [", f);
            jnum(f, a->seen_lo, 'g', 6);
            fputs(", ", f);
            jnum(f, a->seen_hi, 'g', 6);
            fputs("], \"note\": ", f);
            if (a->note) jstr(f, a->note);
            else fputs("null", f);
            fputc('}', f);
        }
        fprintf(f, "\n  ]");
    }
    if (r->n_outputs) {
        fprintf(f, ",\n  \"agreement\": {\"source\": ");
        jstr(f, r->eval_source);
        fprintf(f, ", \"samples\": %zu, \"outputs\": [", r->eval_samples);
        for (size_t i = 0; i < r->n_outputs; i++) {
            const sk_quant_output_agreement *a = &r->outputs[i];
            fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
            jstr(f, a->name);
            fputs(", \"cosine_min\": ", f);
            jnum(f, a->cosine_min, 'f', 6);
            fputs(", \"cosine_mean\": ", f);
            jnum(f, a->cosine_mean, 'f', 6);
            fputs(", \"max_abs\": ", f);
            jnum(f, a->max_abs, 'g', 6);
            fputs(", \"top1\": ", f);
            if (a->top1 >= 0) jnum(f, a->top1, 'f', 4);
            else fputs("null", f);
            fprintf(f, ", \"rows\": %llu}", (unsigned long long)a->rows);
        }
        fprintf(f, "\n  ]}");
    }
    fprintf(f, "\n}\n");
}

/* ---- HTML ---------------------------------------------------------------------------- */

static void hstr(FILE *f, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*p, f);
        }
    }
}

static const char *human(uint64_t n, char *buf, size_t cap)
{
    if (n >= 1000000) snprintf(buf, cap, "%.2f MB", (double)n / 1e6);
    else if (n >= 1000) snprintf(buf, cap, "%.1f kB", (double)n / 1e3);
    else snprintf(buf, cap, "%llu B", (unsigned long long)n);
    return buf;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of the finite values of v[0..n) (0 when none). */
static double median(const double *v, size_t n)
{
    double *t = malloc((n ? n : 1) * sizeof *t);
    size_t k = 0;
    if (!t) return 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) t[k++] = v[i];
    double m = 0;
    if (k) {
        qsort(t, k, sizeof *t, cmp_double);
        m = k % 2 ? t[k / 2] : 0.5 * (t[k / 2 - 1] + t[k / 2]);
    }
    free(t);
    return m;
}

/* A layer's colour: against the median of the run (int8 and int4 live at
 * different levels), red 6 dB or more below it, amber 3 dB or more. */
static const char *sqnr_color(double db, double med)
{
    return !isfinite(db) || db < med - 6 ? "#d64545" : db < med - 3 ? "#e0a030" : "#3a9a5b";
}

static void svg_plot(FILE *f, const sk_quant_report *r, double med)
{
    size_t n = r->n_layers;
    if (!n) return;
    double top = 10;
    int have_out = 0;
    for (size_t i = 0; i < n; i++) {
        const sk_quant_layer *l = &r->layers[i];
        if (isfinite(l->sqnr_db) && l->sqnr_db < 150 && l->sqnr_db > top) top = l->sqnr_db;
        if (isfinite(l->out_sqnr_db)) {
            have_out = 1;
            if (l->out_sqnr_db < 150 && l->out_sqnr_db > top) top = l->out_sqnr_db;
        }
    }
    top = ceil(top / 10) * 10;
    const double bw = n > 200 ? 4 : n > 80 ? 8 : 16, left = 48, ph = 240, bottom = 46;
    double width = left + bw * (double)n + 20, height = ph + bottom + 20;
    if (width < 640) width = 640;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" role=\"img\" "
               "aria-label=\"per-layer SQNR\">\n", width, height);
    for (double v = 0; v <= top + 1e-9; v += 10) {
        double y = 10 + ph - ph * v / top;
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"%.0f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" fill=\"#555\">%.0f dB</text>\n",
                left, y, width - 10, y, left - 4, y + 3, v);
    }
    for (size_t i = 0; i < n; i++) {
        const sk_quant_layer *l = &r->layers[i];
        double db = isfinite(l->sqnr_db) ? fmin(l->sqnr_db, top) : 0;
        if (db < 0) db = 0;
        double h = ph * db / top, x = left + bw * (double)i, y = 10 + ph - h;
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>", x + 1, y,
                bw - 2 > 1 ? bw - 2 : 1, h, sqnr_color(l->sqnr_db, med));
        hstr(f, l->node);
        fprintf(f, " (%s): weight %.1f dB", l->scheme, l->sqnr_db);
        if (isfinite(l->out_sqnr_db)) fprintf(f, ", output %.1f dB", l->out_sqnr_db);
        fputs("</title></rect>\n", f);
    }
    if (have_out) { /* output SQNR: a line through the layers, errors of earlier layers included */
        fputs("<polyline fill=\"none\" stroke=\"#2456a6\" stroke-width=\"1.5\" points=\"", f);
        for (size_t i = 0; i < n; i++) {
            double v = r->layers[i].out_sqnr_db;
            if (!isfinite(v)) continue;
            v = fmax(0, fmin(v, top));
            fprintf(f, "%.1f,%.1f ", left + bw * ((double)i + 0.5), 10 + ph - ph * v / top);
        }
        fputs("\"/>\n", f);
        for (size_t i = 0; i < n; i++) {
            double v = r->layers[i].out_sqnr_db;
            if (!isfinite(v)) continue;
            double vv = fmax(0, fmin(v, top));
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"#2456a6\"><title>", left + bw * ((double)i + 0.5),
                    10 + ph - ph * vv / top);
            hstr(f, r->layers[i].node);
            fprintf(f, ": output %.1f dB</title></circle>\n", v);
        }
    }
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"10\" fill=\"#3a9a5b\"/>"
               "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" fill=\"#555\">weight SQNR (red: 6 dB below the median "
               "of %.1f dB)</text>\n", left, height - 30, left + 14, height - 21, med);
    if (have_out)
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#2456a6\" stroke-width=\"2\"/>"
                   "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" fill=\"#555\">output SQNR vs the float model "
                   "(graph order; a drop marks a layer that hurts)</text>\n",
                left, height - 9, left + 10, height - 9, left + 14, height - 5);
    fputs("</svg>\n", f);
}

static void write_html(FILE *f, const sk_quant_report *r)
{
    char b1[32], b2[32];
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>skiff-quant report</title>\n"
          "<style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}"
          "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
          "td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}"
          ".bad{background:#fde8e8}.warn{background:#fdf3e0}code{font-size:12px}"
          "svg{border:1px solid #eee;max-width:100%;height:auto}</style></head><body>\n", f);
    fputs("<h1>skiff-quant report</h1>\n<table>", f);
    fputs("<tr><th>mode</th><td>", f);
    hstr(f, r->mode);
    fprintf(f, "</td></tr>\n<tr><th>model file</th><td>%s &rarr; %s (%.3fx)</td></tr>\n",
            human(r->file_bytes_before, b1, sizeof b1), human(r->file_bytes_after, b2, sizeof b2),
            ratio(r->file_bytes_after, r->file_bytes_before));
    fprintf(f, "<tr><th>quantized weights</th><td>%zu layers, %s &rarr; %s</td></tr>\n", r->n_layers,
            human(r->weight_bytes_before, b1, sizeof b1), human(r->weight_bytes_after, b2, sizeof b2));
    fprintf(f, "<tr><th>time</th><td>%.2f s</td></tr>\n", r->seconds);
    if (r->calib_samples) {
        fprintf(f, "<tr><th>calibration</th><td>%zu samples, ", r->calib_samples);
        hstr(f, r->calibrator);
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
    if (r->n_outputs) {
        fprintf(f, "<h2>Agreement with the float model</h2>\n<p>%zu %s samples, both models run in skiff's "
                   "engine.</p>\n<table><tr><th>output</th><th>cosine (min)</th><th>cosine (mean)</th>"
                   "<th>max abs error</th><th>top-1 agreement</th></tr>\n",
                r->eval_samples, r->eval_source);
        for (size_t i = 0; i < r->n_outputs; i++) {
            const sk_quant_output_agreement *a = &r->outputs[i];
            fprintf(f, "<tr%s><td>", a->cosine_min < 0.99 ? " class=\"bad\"" : "");
            hstr(f, a->name);
            fprintf(f, "</td><td class=\"n\">%.5f</td><td class=\"n\">%.5f</td><td class=\"n\">%.4g</td>",
                    a->cosine_min, a->cosine_mean, a->max_abs);
            if (a->top1 >= 0) fprintf(f, "<td class=\"n\">%.4f (%llu rows)</td></tr>\n", a->top1, (unsigned long long)a->rows);
            else fputs("<td>-</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    if (r->n_layers) {
        double *w = malloc(r->n_layers * sizeof *w);
        double med = 0;
        if (w) {
            for (size_t i = 0; i < r->n_layers; i++) w[i] = r->layers[i].sqnr_db;
            med = median(w, r->n_layers);
            free(w);
        }
        fputs("<h2>Per-layer error</h2>\n<p>Bars: signal-to-quantization-noise ratio of each weight "
              "(10&nbsp;log10 of &Sigma;w&sup2; over &Sigma;(w&minus;dequant(w))&sup2;); higher is better. Line "
              "(with evaluation samples): the same ratio for each layer's output against the float model's, "
              "errors of the layers before included, so a step down shows where the error enters. Hover for "
              "names; try <code>--exclude</code> on the layers that hurt.</p>\n", f);
        svg_plot(f, r, med);
        /* the five worst layers */
        size_t worst[5], nw = 0;
        for (size_t k = 0; k < 5 && k < r->n_layers; k++) {
            size_t best = SIZE_MAX;
            for (size_t i = 0; i < r->n_layers; i++) {
                int used = 0;
                for (size_t j = 0; j < nw; j++) used |= worst[j] == i;
                if (!used && (best == SIZE_MAX || r->layers[i].sqnr_db < r->layers[best].sqnr_db)) best = i;
            }
            worst[nw++] = best;
        }
        fputs("<p>Lowest SQNR: ", f);
        for (size_t j = 0; j < nw; j++) {
            fputs(j ? ", <code>" : "<code>", f);
            hstr(f, r->layers[worst[j]].node);
            fprintf(f, "</code> %.1f dB", r->layers[worst[j]].sqnr_db);
        }
        fputs("</p>\n<table><tr><th>#</th><th>node</th><th>op</th><th>weight</th><th>shape</th><th>scheme</th>"
              "<th>weight SQNR dB</th><th>output SQNR dB</th><th>before</th><th>after</th></tr>\n", f);
        for (size_t i = 0; i < r->n_layers; i++) {
            const sk_quant_layer *l = &r->layers[i];
            fprintf(f, "<tr%s><td class=\"n\">%zu</td><td><code>",
                    !isfinite(l->sqnr_db) || l->sqnr_db < med - 6 ? " class=\"bad\""
                    : l->sqnr_db < med - 3                       ? " class=\"warn\""
                                                                 : "",
                    i);
            hstr(f, l->node);
            fputs("</code></td><td>", f);
            hstr(f, l->op);
            fputs("</td><td><code>", f);
            hstr(f, l->weight);
            fprintf(f, "</code></td><td>%lldx%lld</td><td>", (long long)l->rows, (long long)l->cols);
            hstr(f, l->scheme);
            fprintf(f, "</td><td class=\"n\">%.1f</td><td class=\"n\">", l->sqnr_db);
            if (isfinite(l->out_sqnr_db)) fprintf(f, "%.1f", l->out_sqnr_db);
            fprintf(f, "</td><td class=\"n\">%s</td><td class=\"n\">%s</td></tr>\n",
                    human(l->bytes_before, b1, sizeof b1), human(l->bytes_after, b2, sizeof b2));
        }
        fputs("</table>\n", f);
    }
    if (r->n_acts) {
        size_t kept = 0;
        for (size_t i = 0; i < r->n_acts; i++) kept += r->acts[i].kept_float;
        fprintf(f, "<h2>Activations</h2>\n<p>%zu activations, %zu kept float.</p>\n<table><tr><th>value</th>"
                   "<th>quantized</th><th>range used</th><th>range seen</th><th>note</th></tr>\n",
                r->n_acts, kept);
        for (size_t i = 0; i < r->n_acts; i++) {
            const sk_quant_act *a = &r->acts[i];
            fprintf(f, "<tr%s><td><code>", a->kept_float ? " class=\"warn\"" : "");
            hstr(f, a->name);
            fprintf(f, "</code></td><td>%s</td><td class=\"n\">", a->kept_float ? "no" : "yes");
            if (!a->kept_float) fprintf(f, "[%.4g, %.4g]", a->lo, a->hi);
            fprintf(f, "</td><td class=\"n\">[%.4g, %.4g]</td><td>", a->seen_lo, a->seen_hi);
            hstr(f, a->note);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    if (r->n_skipped) {
        fprintf(f, "<h2>Left float</h2>\n<table><tr><th>node</th><th>reason</th></tr>\n");
        for (size_t i = 0; i < r->n_skipped; i++) {
            fputs("<tr><td><code>", f);
            hstr(f, r->skipped[i].node);
            fputs("</code></td><td>", f);
            hstr(f, r->skipped[i].reason);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
    }
    fputs("<p><small>Written by skiff-quant.</small></p>\n</body></html>\n", f);
}

static sk_status write_file(const sk_quant_report *r, const char *path, int html, sk_error *err)
{
    sk_atomic_file af;
    sk_status s = sk_atomic_open(&af, path, 0644, err);
    if (s) return s;
    if (html) write_html(af.f, r);
    else write_json(af.f, r);
    if (ferror(af.f)) {
        sk_atomic_abort(&af);
        return sk_error_set(err, SK_EIO, "%s: write error", path);
    }
    return sk_atomic_commit(&af, 0, err);
}

sk_status sk_quant_report_write_json(const sk_quant_report *r, const char *path, sk_error *err)
{
    return write_file(r, path, 0, err);
}

sk_status sk_quant_report_write_html(const sk_quant_report *r, const char *path, sk_error *err)
{
    return write_file(r, path, 1, err);
}
