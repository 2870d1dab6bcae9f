from django import forms
from django.contrib import admin, messages
from django.core.files.storage import default_storage
from django.db.models import Case, IntegerField, Value, When
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from common.admin import ReadOnlyAdmin
from generation import moderation_cases, output_formats
from generation.engines import diffusers as diffusers_engine
from generation.models import (
    BlockedTerm,
    Job,
    JobImage,
    ModelCatalogEntry,
    ModerationCase,
    PromptRefusal,
)

THUMBNAIL_WIDTH = 160


def _image_url(image: JobImage) -> str:
    return reverse("admin:generation_job_image", args=[image.pk])


def _thumbnails(images) -> str:
    """Images from storage, through the staff-only view (quarantined ones included)."""
    return (
        format_html_join(
            " ",
            '<a href="{0}" target="_blank"><img src="{0}" width="{1}" alt="image {2}"></a>',
            ((_image_url(i), THUMBNAIL_WIDTH, i.index) for i in images if i.storage_path),
        )
        or "—"
    )


class ModelCatalogEntryForm(forms.ModelForm):
    class Meta:
        model = ModelCatalogEntry
        fields = "__all__"  # noqa: DJ007 (staff edit every column of the catalog)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("engine") == "diffusers":
            problem = diffusers_engine.settings_problem(cleaned.get("engine_settings"))
            if problem:
                self.add_error("engine_settings", problem)
        return cleaned


@admin.register(ModelCatalogEntry)
class ModelCatalogEntryAdmin(admin.ModelAdmin):
    """Staff edit the catalog here; a save reaches every web process within seconds."""

    form = ModelCatalogEntryForm

    list_display = (
        "id",
        "name",
        "engine",
        "credits_per_image",
        "is_default",
        "enabled",
        "sort_order",
    )
    list_editable = ("credits_per_image", "enabled", "sort_order")
    list_filter = ("engine", "enabled")
    search_fields = ("id", "name")
    ordering = ("sort_order", "id")


class JobImageInline(admin.TabularInline):
    model = JobImage
    extra = 0
    can_delete = False
    fields = ("index", "thumbnail", "width", "height", "storage_path", "quarantined")
    readonly_fields = fields

    @admin.display(description="Image")
    def thumbnail(self, obj):
        return _thumbnails([obj])

    def has_add_permission(self, request, obj=None):
        return False


class _ExactTextFilter(admin.SimpleListFilter):
    """A text box that keeps the jobs whose field is exactly the value typed."""

    template = "admin/generation/text_filter.html"

    def lookups(self, request, model_admin):
        return [("", "")]  # one placeholder, so the filter shows; the box takes any value

    def choices(self, changelist):
        yield {"parameter_name": self.parameter_name, "value": self.value() or ""}

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.parameter_name: value}) if value else queryset


class EndUserFilter(_ExactTextFilter):
    title = "user (OpenAI's user)"
    parameter_name = "end_user"


class SafetyIdentifierFilter(_ExactTextFilter):
    title = "safety identifier"
    parameter_name = "safety_identifier"


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    """Jobs are read-only here: they change state only through generation.services."""

    list_display = (
        "public_id",
        "organization",
        "dialect",
        "mode",
        "model",
        "status",
        "credits_used",
        "created_at",
    )
    list_filter = (
        "status",
        "dialect",
        "mode",
        "model",
        "safety_setting",
        "output_format",
        EndUserFilter,
        SafetyIdentifierFilter,
    )
    search_fields = ("public_id", "id", "organization__name", "organization__slug", "prompt")
    # An organization's jobs: ?organization__id__exact=<id> (linked from the organization).
    list_select_related = ("organization", "model")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [JobImageInline]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Job._meta.fields]

    def get_urls(self):
        return [
            path(
                "image/<int:image_id>.png",
                self.admin_site.admin_view(self.image_view),
                name="generation_job_image",
            ),
            *super().get_urls(),
        ]

    def image_view(self, request, image_id: int):
        """Serve any stored image, quarantined or not, to staff (admin_view refuses others)."""
        image = get_object_or_404(JobImage, pk=image_id)
        if not image.storage_path:
            raise Http404("This image has no stored file.")
        try:
            file = default_storage.open(image.storage_path, "rb")
        except FileNotFoundError:
            raise Http404("This image was deleted.") from None
        response = FileResponse(
            file, content_type=output_formats.content_type_of(image.storage_path)
        )
        response["Cache-Control"] = "private, no-store"
        return response


@admin.register(BlockedTerm)
class BlockedTermAdmin(admin.ModelAdmin):
    """Whole words refused in prompts; an edit is refused on every web host within seconds."""

    list_display = ("term", "note", "created_by", "created_at")
    search_fields = ("term", "note")
    fields = ("term", "note")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(PromptRefusal)
class PromptRefusalAdmin(admin.ModelAdmin):
    list_display = ("created_at", "organization", "reason", "matched_terms", "profanity_score")
    list_filter = ("reason",)
    search_fields = ("organization__name", "organization__slug", "prompt")
    list_select_related = ("organization",)
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in PromptRefusal._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ModerationCase)
class ModerationCaseAdmin(admin.ModelAdmin):
    """The review queue: pending cases first, oldest waiting at the top."""

    list_display = (
        "job",
        "thumbnails",
        "organization",
        "status",
        "flagged",
        "created_at",
        "decided_by",
    )
    list_filter = ("status", "safety_setting")
    search_fields = ("job__public_id", "organization__name", "organization__slug")
    list_select_related = ("job", "organization", "decided_by")
    fields = (
        "decision",
        "job",
        "organization",
        "status",
        "prompt",
        "images",
        "score_table",
        "safety_setting",
        "created_at",
        "decided_by",
        "decided_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        pending_first = Case(
            When(status=ModerationCase.Status.PENDING, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        # Annotated before ordering (the base get_queryset orders first).
        queryset = self.model._default_manager.annotate(
            pending_first=pending_first
        ).prefetch_related("job__images")
        return queryset.order_by(*self.get_ordering(request))

    def get_ordering(self, request):
        return ["pending_first", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Images")
    def thumbnails(self, obj):
        return _thumbnails(obj.job.images.all())

    @admin.display(description="Flagged classes")
    def flagged(self, obj):
        return ", ".join(obj.flagged_classes)

    @admin.display(description="Prompt")
    def prompt(self, obj):
        job = obj.job
        if job.negative_prompt:
            return format_html("{}<br><em>Negative:</em> {}", job.prompt, job.negative_prompt)
        return job.prompt

    @admin.display(description="Images (quarantined until approved)")
    def images(self, obj):
        return _thumbnails(obj.job.images.all())

    @admin.display(description="Scores per class")
    def score_table(self, obj):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    label,
                    f"{score:.2f}",
                    obj.thresholds.get(label, "—"),
                    "flagged" if label in obj.flagged_classes else "",
                )
                for label, score in sorted(obj.scores.items(), key=lambda item: -item[1])
            ),
        )
        return format_html(
            "<table><thead><tr><th>Class</th><th>Score</th><th>Threshold</th><th></th></tr>"
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Decision")
    def decision(self, obj):
        if obj.status != ModerationCase.Status.PENDING:
            when = f"{obj.decided_at:%Y-%m-%d %H:%M} UTC"
            return f"{obj.get_status_display()} by {obj.decided_by} at {when}"
        return format_html(
            '<a class="button" href="{}">Approve…</a> <a class="button" href="{}">Reject…</a>',
            reverse("admin:generation_moderationcase_decide", args=[obj.pk, "approve"]),
            reverse("admin:generation_moderationcase_decide", args=[obj.pk, "reject"]),
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/decide/<str:decision>/",
                self.admin_site.admin_view(self.decide_view),
                name="generation_moderationcase_decide",
            ),
            *super().get_urls(),
        ]

    DECISIONS = {
        "approve": (
            moderation_cases.approve_case,
            "Release the images to the customer and complete the job. Nothing is charged; "
            "the organization's owners are told by email.",
        ),
        "reject": (
            moderation_cases.reject_case,
            "Confirm the refusal: the images stay quarantined. The third rejection within "
            "30 days suspends the organization.",
        ),
    }

    def decide_view(self, request, pk: int, decision: str):
        if decision not in self.DECISIONS:
            raise Http404("Unknown decision")
        case = get_object_or_404(
            ModerationCase.objects.select_related("job", "organization"), pk=pk
        )
        if not self.has_change_permission(request, case):
            return redirect("admin:index")
        decide, explanation = self.DECISIONS[decision]
        if request.method == "POST":
            try:
                decide(case=case, staff=request.user)
            except moderation_cases.CaseAlreadyDecided as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                case.organization.refresh_from_db()
                suspended = (
                    " The organization is now suspended."
                    if (case.organization.is_suspended)
                    else ""
                )
                self.message_user(
                    request, f"Case for job {case.job} {decision}d.{suspended}", messages.SUCCESS
                )
            return redirect("admin:generation_moderationcase_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": case,
            "title": f"{decision.capitalize()} the case for job {case.job}?",
            "decision": decision,
            "explanation": explanation,
            "images": _thumbnails(case.job.images.all()),
        }
        return TemplateResponse(request, "admin/generation/moderationcase/decide.html", context)
