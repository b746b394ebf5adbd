"""The quicker html_params (booking.forms) writes exactly what WTForms' own writes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup

from booking.forms import WTFORMS_HTML_PARAMS, draw_fields_quicker, html_params

KEYS = st.sampled_from(
    [
        "id",
        "name",
        "value",
        "class_",
        "for_",
        "data_day",
        "data_from_until",
        "aria_label",
        "aria_describedby",
        "checked",
        "required",
        "min",
        "step",
        "type",
        "placeholder",
        "list",
    ]
)
VALUES = st.one_of(
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.text(max_size=12).map(Markup),  # markup passed in: kept, but its quotes escaped
    st.just('x" onmouseover="alert(1)'),
    st.just(Markup('<b class="x">&amp;</b>')),
)


@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_the_same_attributes_as_wtforms(attributes):
    ours, theirs = html_params(**attributes), WTFORMS_HTML_PARAMS(**attributes)
    assert ours == theirs
    assert isinstance(ours, Markup)


def test_wtforms_widgets_draw_with_it():
    import wtforms.widgets
    import wtforms.widgets.core as widget_core

    draw_fields_quicker()  # what create_app did; twice changes nothing
    assert widget_core.html_params is html_params
    assert wtforms.widgets.html_params is html_params
    assert widget_core.CheckboxInput.html_params is html_params
    assert widget_core.SubmitInput.html_params is html_params


def test_a_hostile_value_stays_inside_its_attribute():
    draw_fields_quicker()
    from wtforms import Form, StringField

    class Probe(Form):
        name = StringField("Name")

    form = Probe(data={"name": '"><script>alert(1)</script>'})
    drawn = str(form.name(data_x=Markup('a"b')))
    assert "<script>" not in drawn
    assert drawn == (
        '<input data-x="a&quot;b" id="name" name="name" type="text" '
        'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">'
    )
