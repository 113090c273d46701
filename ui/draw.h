/* draw.h — everything the console paints, from state it is handed: no SQL, no input. Every
 * string goes through the safetext.c guard on its way to the terminal. */
#ifndef MAILTAP_UI_DRAW_H
#define MAILTAP_UI_DRAW_H

#include "ui/console.h"
#include "ui/detail.h"
#include "ui/model.h"
#include "ui/summary_model.h"

#include <stdbool.h>

/* The filter form (key f). */
enum ui_form_field { FORM_STATUS, FORM_FAILURES, FORM_SINCE, FORM_UNTIL, FORM_FINDING,
                     FORM_FIELDS };
struct ui_form {
    enum ui_form_field field;
    int status;                 /* enum mt_status, -1: any */
    bool failures;
    char since[48], until[48];
    char finding[48];           /* "" or a security-finding word (model_parse_finding) */
    char error[96];
};

enum ui_screen { SCREEN_LIST, SCREEN_DETAIL, SCREEN_SUMMARY, SCREEN_HELP, SCREEN_TRACE };

struct draw_state {
    enum ui_screen screen;
    bool color, utf8;
    const char *db_label;
    const struct ui_live *live;
    bool live_ended;                /* the live source has finished (a read is done) */
    bool live_failed;               /* ... and said some input was bad */
    const struct ui_sensor *sensor;
    long db_sessions;               /* every session in the database */
    const char *message;            /* bottom line; NULL or "" for the key hint */
    const char *prompt;             /* non-NULL: a prompt being edited ("/alice") */
    struct ui_model *model;
    struct ui_detail *detail;       /* SCREEN_DETAIL */
    const char *find;               /* detail: text to highlight */
    const struct ui_summary *summary;
    int summary_top, help_top;
    const struct ui_form *form;     /* non-NULL: the form is open over the screen */
    const struct ui_trace *trace;   /* SCREEN_TRACE */
};

void draw_init(bool color);
void draw_screen(const struct draw_state *state);

/* Screen geometry, shared with the input side (paging, mouse). */
int draw_list_rows(void);      /* rows of sessions in the list */
int draw_list_first_row(void); /* screen row of the first session */
int draw_detail_rows(void);    /* rows of text in the detail view */
int draw_trace_rows(void);     /* hops the trace view shows at once */
int draw_tab_at(int x);        /* the tab under column x of the top line, -1 if none */
int draw_summary_columns(void);/* how many buckets the chart has room for */
/* Rows the summary takes at this width (its category lines wrap). */
int draw_summary_height(const struct ui_summary *summary);

#endif
